package source

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/internal/rowfmt"
)

// standardiseJSON runs lines through AddJSON and returns the rows and quarantine rows as JSONL.
func standardiseJSON(t testing.TB, lines []string, opts *Options) (string, string) {
	t.Helper()
	o := *opts
	o.Now = func() time.Time { return time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC) }
	s, err := NewStandardizer(&o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, l := range lines {
		buf := []byte(l) // a buffer of its own, overwritten after use, as a reader's would be
		if err := s.AddJSON(buf, Position{Line: int64(i + 1)}); err != nil {
			return "config error: " + err.Error(), ""
		}
		for j := range buf {
			buf[j] = 'X'
		}
	}
	b, err := s.Flush()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	var rows, quar bytes.Buffer
	if b.Rows != nil {
		w, _ := rowfmt.NewWriter(&rows, "jsonl", b.Rows.Schema())
		w.Write(b.Rows)
		w.Flush()
	}
	if b.Quarantine != nil {
		// ingested_at is the fixed clock, so the rows compare whole.
		w, _ := rowfmt.NewWriter(&quar, "jsonl", b.Quarantine.Schema())
		w.Write(b.Quarantine)
		w.Flush()
	}
	return rows.String(), quar.String()
}

// compareJSONPaths checks that the fast object parser and encoding/json give the same rows and
// the same quarantine rows.
func compareJSONPaths(t testing.TB, lines []string, opts *Options) {
	t.Helper()
	fr, fq := standardiseJSON(t, lines, opts)
	slowJSON = true
	sr, sq := standardiseJSON(t, lines, opts)
	slowJSON = false
	if fr != sr || fq != sq {
		t.Fatalf("fast and encoding/json paths differ on %q:\nfast rows %s\nslow rows %s\nfast quarantine %s\nslow quarantine %s", lines, fr, sr, fq, sq)
	}
}

func TestFastJSONMatchesDecoder(t *testing.T) {
	lines := []string{
		`{"user_id":"u1","item_id":"i1","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z"}`,
		` { "user_id" : "u\"2" , "item_id":"i\u00e92", "interaction_type":"view","timestamp":1709805600000,"value":-1.5e2 } `,
		`{"user_id":"u3","item_id":"i3","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z","properties":{"a":1,"b":"x"},"extra":[1,{"z":null}],"ok":true,"none":null}`,
		`{"user_id":"u4","item_id":"i4","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z","user_id":"u4b"}`,
		`{"user":{"id":"u5","tier":"gold"},"item_id":"i5","interaction_type":"like","timestamp":"2024-03-07T10:00:00Z"}`,
		`{"user_id":"u6","item_id":"i6","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z"} trailing`,
		`{"user_id":"u7","item_id":"i7","interaction_type":"view","timestamp":01}`,
		`{"user_id":"u8","item_id":"i8","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z",}`,
		`[1,2]`, `"x"`, `{}`, `{"a"}`, `{"user_id":"u9","item_id":"\t"}`, `{"v":1e}`, `{"v":-}`, `{"v":tru}`,
		`{"user_id":"u10","item_id":"i10","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z","event_date":"2024-03-07"}`,
		`{"\u0075ser_id":"u11","item_id":"i11","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z"}`,
	}
	compareJSONPaths(t, lines, &Options{TimestampFormat: TimestampRFC3339OrEpochMS})
	compareJSONPaths(t, lines, &Options{Mapping: &Mapping{Fields: map[string]string{"user_id": "user.id"}}, TimestampFormat: TimestampRFC3339OrEpochMS})
}

// FuzzFastJSON: on any line, the fast parser and encoding/json standardise alike.
func FuzzFastJSON(f *testing.F) {
	f.Add(`{"user_id":"u1","item_id":"i1","interaction_type":"view","timestamp":"2024-03-07T10:00:00Z","p":{"a":[1,"b"]}}`)
	f.Add(`{"user_id":"u\n","item_id":1,"interaction_type":true,"timestamp":1709805600000.5}`)
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Contains(line, "\n") {
			return // one record per line, as NDJSON
		}
		compareJSONPaths(t, []string{line}, &Options{TimestampFormat: TimestampRFC3339OrEpochMS})
	})
}
