package compaction

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lakehouse/lake/internal/testutil"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// A table written by Spark with a deletion vector: vacuum keeps the vector's file while the
// vector is live; purge rewrites the file without the deleted rows; vacuum after the retention
// then deletes the old file and its vector, so no file on disk holds the deleted rows.
func TestPurgeDeletionVectorsThenVacuum(t *testing.T) {
	ctx := context.Background()
	dir := testutil.CopyTable(t, "table-with-dv-small")
	tb, err := table.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	want := canonicalRows(t, tb, latest(t, tb))
	if len(want) != 8 {
		t.Fatalf("the corpus table reads %d rows, want 8", len(want))
	}
	res, err := Vacuum(ctx, tb, nil)
	if err != nil || len(res.Deleted) != 0 {
		t.Fatalf("vacuum before purge deleted %v (%v): the data file and its vector are live", res.Deleted, err)
	}
	opt, err := Optimize(ctx, tb, &OptimizeOptions{Purge: true})
	if err != nil {
		t.Fatal(err)
	}
	if opt.FilesRemoved != 1 || opt.FilesAdded != 1 || opt.Rows != 8 {
		t.Fatalf("purge: %+v", opt)
	}
	snap := latest(t, tb)
	for _, a := range snap.Files() {
		if a.DeletionVector != nil {
			t.Fatalf("file %s still has a deletion vector", a.Path)
		}
	}
	if got := canonicalRows(t, tb, snap); !slices.Equal(got, want) {
		t.Fatalf("rows after purge: %v", got)
	}
	hist, _ := tb.History(ctx, 1)
	if hist[0].CommitInfo.Operation != "REORG" {
		t.Fatalf("operation %q", hist[0].CommitInfo.Operation)
	}
	// A second purge finds nothing.
	if again, err := Optimize(ctx, tb, &OptimizeOptions{Purge: true}); err != nil || again.Bins != 0 {
		t.Fatalf("second purge: %+v, %v", again, err)
	}
	later := func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
	res, err = Vacuum(ctx, tb, &VacuumOptions{Now: later})
	if err != nil {
		t.Fatal(err)
	}
	wantDeleted := []string{"deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin", "part-00000-fae5310a-a37d-4e51-827b-c3d5516560ca-c000.snappy.parquet"}
	if !slices.Equal(res.Deleted, wantDeleted) {
		t.Fatalf("vacuum deleted %v, want %v", res.Deleted, wantDeleted)
	}
	if got := canonicalRows(t, tb, latest(t, tb)); !slices.Equal(got, want) {
		t.Fatal("rows after vacuum")
	}
	// The only data file left is the rewritten one, without the deleted rows.
	var left []string
	it := tb.Bucket().List(nil)
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			break
		}
		if !obj.IsDir && len(obj.Key) > len(txlog.LogDir) && obj.Key[:len(txlog.LogDir)] != txlog.LogDir {
			left = append(left, obj.Key)
		}
	}
	if len(left) != 1 || left[0] != snap.Files()[0].Path {
		t.Fatalf("files left: %v", left)
	}
}
