package txlog

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
)

// TestCheckpointStatsStore loads a snapshot from a checkpoint whose stats span several store
// blocks, replays commits that remove most of its files (compacting the file table) and add and
// replace others, and checks that AllFiles, ScanFiles, Files and an incremental Update all hand
// out every active file with its own stats.
func TestCheckpointStatsStore(t *testing.T) {
	ctx := context.Background()
	l, b := newTestLog(t, &LogOptions{DisableAutoCheckpoint: true})
	s := createTable(t, l, nil)
	const n = 6000
	want := map[string]string{}
	acts := []Action{{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 2}}, {Metadata: ptr(s.Metadata())}}
	for i := range n {
		a := addAction(fmt.Sprintf("day=1/f%05d.parquet", i), "1")
		// Long, distinct stats: 6000 of them fill several 256 KiB blocks.
		a.Add.Stats = fmt.Sprintf(`{"numRecords":%d,"minValues":{"s":"%s"}}`, i, strings.Repeat(string(rune('a'+i%26)), 100+i%50))
		if i%1000 == 7 {
			a.Add.Tags = map[string]string{"k": "v"} // kept whole, not compact
		}
		want[a.Add.Path] = a.Add.Stats
		acts = append(acts, a)
	}
	var buf bytes.Buffer
	if err := EncodeCheckpoint(&buf, acts); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteAll(ctx, fmt.Sprintf("%s%020d.checkpoint.parquet", LogDir, 1), buf.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteAll(ctx, CommitKey(1), []byte(`{"commitInfo":{"operation":"x"}}`+"\n"), nil); err != nil {
		t.Fatal(err)
	}
	s, err := l.Snapshot(ctx)
	if err != nil || s.checkpointVersion != 1 {
		t.Fatalf("snapshot from the checkpoint: %v (checkpoint %d)", err, s.checkpointVersion)
	}
	if s.files.stats == nil || len(s.files.stats.blocks) < 3 {
		t.Fatalf("want the stats in several store blocks, got %+v", s.files.stats)
	}
	check := func(s *Snapshot, want map[string]string) {
		t.Helper()
		if s.NumFiles() != len(want) {
			t.Fatalf("NumFiles = %d, want %d", s.NumFiles(), len(want))
		}
		got := map[string]string{}
		s.AllFiles(func(a *Add) bool { got[a.Path] = a.Stats; return true })
		if !maps.Equal(got, want) {
			t.Fatalf("AllFiles: %d files, want %d (or stats differ)", len(got), len(want))
		}
		clear(got)
		s.ScanFiles(func(a *Add) bool { got[strings.Clone(a.Path)] = strings.Clone(a.Stats); return true })
		if !maps.Equal(got, want) {
			t.Fatal("ScanFiles differs from AllFiles")
		}
		clear(got)
		for _, a := range s.Files() {
			got[a.Path] = a.Stats
		}
		if !maps.Equal(got, want) {
			t.Fatal("Files differs from AllFiles")
		}
	}
	check(s, want)

	// Remove 4,000 files (more than half: the table compacts), replace one and add one.
	var rm []Action
	for i := range 4000 {
		p := fmt.Sprintf("day=1/f%05d.parquet", i)
		rm = append(rm, removeAction(p))
		delete(want, p)
	}
	commit(t, l, s, rm...)
	re := addAction("day=1/f05000.parquet", "1")
	re.Add.Stats = `{"numRecords":-1}`
	commit(t, l, s, re, addAction("day=1/new.parquet", "1"))
	want[re.Add.Path] = re.Add.Stats
	want["day=1/new.parquet"] = `{"numRecords":1}`

	full, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(full, want)
	upd, err := l.Update(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	check(upd, want)

	// A checkpoint of the snapshot reads back the same.
	if _, err := l.Checkpoint(ctx, full); err != nil {
		t.Fatal(err)
	}
	again, err := l.Snapshot(ctx)
	if err != nil || again.checkpointVersion != full.Version() {
		t.Fatalf("snapshot from the new checkpoint: %v", err)
	}
	check(again, want)
}

func ptr[T any](v T) *T { return &v }
