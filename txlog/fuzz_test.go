package txlog

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzDecodeActions(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "testdata", "conformance", "delta-rs", "*", "_delta_log", "0000000000000000000[0-2].json"))
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"add":{"path":"a","partitionValues":{"x":null},"size":1,"modificationTime":2,"dataChange":true}}`))
	f.Add([]byte(`{"unknownAction":{"x":1}}` + "\n" + `{"commitInfo":{"timestamp":1,"foo":"bar"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		acts, err := DecodeActions(data)
		if err != nil {
			return
		}
		// What decodes must encode and decode to the same number of actions.
		enc, err := EncodeActions(acts)
		if err != nil {
			t.Fatalf("encode after decode: %v", err)
		}
		again, err := DecodeActions(enc)
		if err != nil || len(again) != len(acts) {
			t.Fatalf("round trip: %d vs %d actions, %v", len(again), len(acts), err)
		}
	})
}

func FuzzParseLastCheckpoint(f *testing.F) {
	for _, s := range []string{`{"version":3,"size":10}`, `{"version":2,"size":5,"size_in_bytes":1234,"parts":null}`,
		`{"version":9,"v2Checkpoint":{"path":"x","sizeInBytes":3}}`, ``, `{}`, `{"version":"7"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lc, err := ParseLastCheckpoint(data)
		if err == nil && lc.Version < 0 {
			t.Fatalf("negative version accepted: %d", lc.Version)
		}
	})
}
