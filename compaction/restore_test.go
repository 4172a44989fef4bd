package compaction

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestRestore(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	appendRows(t, tb, rowsN(3, 2, "a"))
	v2 := appendRows(t, tb, rowsN(3, 2, "b"))
	rowsV2 := canonicalRows(t, tb, latest(t, tb))
	if _, err := Optimize(ctx, tb, nil); err != nil {
		t.Fatal(err)
	}
	v4 := appendRows(t, tb, rowsN(2, 2, "c"))
	rowsV4 := canonicalRows(t, tb, latest(t, tb))

	res, err := Restore(ctx, tb, &RestoreOptions{Version: v2})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Committed || res.Version != v4+1 || res.Restored != v2 || res.FilesAdded != 4 || res.FilesRemoved != 4 {
		t.Fatalf("result: %+v", res)
	}
	if got := canonicalRows(t, tb, latest(t, tb)); !slices.Equal(got, rowsV2) {
		t.Fatalf("after restore to %d: %v, want %v", v2, got, rowsV2)
	}
	hist, err := tb.History(ctx, 1)
	if err != nil || hist[0].CommitInfo.Operation != "RESTORE" || hist[0].CommitInfo.OperationMetrics["numRestoredFiles"] != "4" {
		t.Fatalf("history: %+v, %v", hist[0].CommitInfo, err)
	}
	// Forward again, by timestamp.
	snap4, err := tb.SnapshotAt(ctx, v4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, tb, &RestoreOptions{Timestamp: snap4.Timestamp()}); err != nil {
		t.Fatal(err)
	}
	if got := canonicalRows(t, tb, latest(t, tb)); !slices.Equal(got, rowsV4) {
		t.Fatal("restore by timestamp")
	}
	// Restoring the current state commits nothing.
	res, err = Restore(ctx, tb, &RestoreOptions{Version: latest(t, tb).Version()})
	if err != nil || res.Committed {
		t.Fatalf("no-op restore: %+v, %v", res, err)
	}
	if _, err := Restore(ctx, tb, &RestoreOptions{Version: 99}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("future version: %v", err)
	}
	// Once vacuum deleted the files of version 2 (removed by the restore to v4), restoring it
	// fails clearly and commits nothing.
	later := func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
	if _, err := Vacuum(ctx, tb, &VacuumOptions{Now: later}); err != nil {
		t.Fatal(err)
	}
	before := latest(t, tb).Version()
	_, err = Restore(ctx, tb, &RestoreOptions{Version: v2})
	var mf *MissingFilesError
	if !errors.As(err, &mf) || !errors.Is(err, ErrFilesMissing) || len(mf.Paths) != 4 || mf.Version != v2 {
		t.Fatalf("restore of a vacuumed version: %v", err)
	}
	if latest(t, tb).Version() != before {
		t.Fatal("a failed restore committed")
	}
}
