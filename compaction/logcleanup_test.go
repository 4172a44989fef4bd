package compaction

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

func TestCleanupLogKeepsTimeTravelInsideRetention(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tb := newTable(t, dir, map[string]string{"delta.checkpointInterval": "5"})
	for _, r := range rowsN(21, 3, "e") {
		appendRows(t, tb, []row{r})
	}
	now := time.Now()
	// Commit v was made 40-v days ago: 0..9 are older than 30 days, 10.. are not.
	logDir := filepath.Join(dir, "_delta_log")
	for v := int64(0); v <= 21; v++ {
		mt := now.Add(-time.Duration(40-v) * 24 * time.Hour)
		if err := os.Chtimes(filepath.Join(logDir, filepath.Base(txlog.CommitKey(v))), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(logDir, "00000000000000000002.crc"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := canonicalRows(t, tb, latest(t, tb))
	clock := func() time.Time { return now }
	dry, err := CleanupLog(ctx, tb, &CleanupOptions{DryRun: true, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	res, err := CleanupLog(ctx, tb, &CleanupOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dry.Deleted, res.Deleted) {
		t.Fatalf("dry run %v, real run %v", dry.Deleted, res.Deleted)
	}
	if res.CheckpointVersion != 5 {
		t.Fatalf("kept checkpoint %d, want 5 (commits 0..9 are older than 30 days): %+v", res.CheckpointVersion, res)
	}
	wantDeleted := []string{"_delta_log/00000000000000000002.crc"}
	for v := int64(0); v < 5; v++ {
		wantDeleted = append(wantDeleted, txlog.CommitKey(v))
	}
	slices.Sort(wantDeleted)
	if !slices.Equal(res.Deleted, wantDeleted) {
		t.Fatalf("deleted %v, want %v", res.Deleted, wantDeleted)
	}
	for v := int64(5); v <= 21; v++ {
		if _, err := tb.SnapshotAt(ctx, v); err != nil {
			t.Errorf("version %d: %v", v, err)
		}
	}
	if _, err := tb.SnapshotAt(ctx, 4); !errors.Is(err, txlog.ErrVersionNotFound) {
		t.Errorf("version 4: %v", err)
	}
	if got := canonicalRows(t, tb, latest(t, tb)); !slices.Equal(got, want) {
		t.Fatal("rows changed")
	}
	// Nothing is older than the kept checkpoint any more.
	again, err := CleanupLog(ctx, tb, &CleanupOptions{Now: clock})
	if err != nil || len(again.Deleted) != 0 {
		t.Fatalf("second clean-up: %+v, %v", again, err)
	}
}

func TestCleanupLogYoungTableDeletesNothing(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), map[string]string{"delta.checkpointInterval": "2"})
	for _, r := range rowsN(5, 1, "e") {
		appendRows(t, tb, []row{r})
	}
	res, err := CleanupLog(ctx, tb, nil)
	if err != nil || len(res.Deleted) != 0 || res.CheckpointVersion != -1 {
		t.Fatalf("%+v, %v", res, err)
	}
}

func TestParseLogFile(t *testing.T) {
	for name, want := range map[string]logFile{
		"00000000000000000007.json":                                             {version: 7, kind: "commit"},
		"00000000000000000007.crc":                                              {version: 7, kind: "crc"},
		"00000000000000000007.checkpoint.parquet":                               {version: 7, kind: "checkpoint"},
		"00000000000000000007.checkpoint.0000000001.0000000002.parquet":         {version: 7, kind: "checkpoint", parts: 2},
		"00000000000000000007.checkpoint.80a083e8-7026-4e79-81be-64bd76c4.json": {version: 7, kind: "checkpoint"},
		"00000000000000000007.00000000000000000009.compacted.json":              {version: 7, kind: "compacted"},
	} {
		got, ok := parseLogFile(name)
		if !ok || got.version != want.version || got.kind != want.kind || got.parts != want.parts {
			t.Errorf("%s: %+v %v", name, got, ok)
		}
	}
	for _, name := range []string{"_last_checkpoint", "00000000000000000007.json.tmp", "7.json", "00000000000000000007.checkpoint.0000000003.0000000002.parquet"} {
		if _, ok := parseLogFile(name); ok {
			t.Errorf("%s parsed", name)
		}
	}
}

// On a table with in-commit timestamps the commit times come from the commits, not the files.
func TestCleanupLogInCommitTimestamps(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := now.Add(-40 * 24 * time.Hour)
	tb, err := table.Create(ctx, memURI(), table.InteractionSchema(), &table.CreateOptions{
		Options:          table.Options{Log: txlog.LogOptions{Now: func() time.Time { return clock }}},
		PartitionColumns: []string{"event_date"},
		Properties:       map[string]string{"delta.checkpointInterval": "5", "delta.enableInCommitTimestamps": "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	for _, r := range rowsN(21, 3, "e") {
		clock = clock.Add(24 * time.Hour) // commit v is made 40-v days ago
		appendRows(t, tb, []row{r})
	}
	res, err := CleanupLog(ctx, tb, &CleanupOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if res.CheckpointVersion != 5 || len(res.Deleted) != 5 {
		t.Fatalf("%+v", res)
	}
	if _, err := tb.SnapshotAt(ctx, 5); err != nil {
		t.Fatal(err)
	}
}

// On a table with V2 checkpoints whose files live in sidecars, clean-up deletes the sidecars
// only the deleted checkpoints referenced, and the table still loads from the one it keeps.
func TestCleanupLogV2Sidecars(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tb, err := table.Create(ctx, dir, table.InteractionSchema(), &table.CreateOptions{
		Options:          table.Options{Log: txlog.LogOptions{CheckpointPartActions: 4}},
		PartitionColumns: []string{"event_date"},
		Properties:       map[string]string{"delta.checkpointInterval": "5", "delta.checkpointPolicy": "v2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	for _, r := range rowsN(21, 3, "e") {
		appendRows(t, tb, []row{r})
	}
	sidecars := func() []string {
		ents, _ := os.ReadDir(filepath.Join(dir, "_delta_log", "_sidecars"))
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	before := sidecars()
	if len(before) < 8 {
		t.Fatalf("sidecars %v: want the checkpoints at 5, 10, 15 and 20 in sidecars", before)
	}
	now := time.Now()
	old := now.Add(-40 * 24 * time.Hour)
	logDir := filepath.Join(dir, "_delta_log")
	ents, _ := os.ReadDir(logDir)
	for _, e := range ents { // every commit up to 12 and every sidecar 40 days old
		v, err := strconv.ParseInt(strings.SplitN(e.Name(), ".", 2)[0], 10, 64)
		if err == nil && v <= 12 {
			os.Chtimes(filepath.Join(logDir, e.Name()), old, old)
		}
	}
	for _, name := range before {
		os.Chtimes(filepath.Join(logDir, "_sidecars", name), old, old)
	}
	res, err := CleanupLog(ctx, tb, &CleanupOptions{Now: func() time.Time { return now }})
	if err != nil || res.CheckpointVersion != 10 {
		t.Fatalf("clean-up: %+v, %v", res, err)
	}
	after := sidecars()
	if len(after) == 0 || len(after) >= len(before) {
		t.Fatalf("sidecars before %d, after %d: want the ones of checkpoint 5 gone and the others kept", len(before), len(after))
	}
	// Every version from the kept checkpoint on still loads, from fresh.
	for _, v := range []int64{10, 15, 21} {
		t2, err := table.Open(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := t2.SnapshotAt(ctx, v); err != nil {
			t.Fatalf("version %d after clean-up: %v", v, err)
		}
		t2.Close()
	}
}
