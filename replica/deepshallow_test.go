package replica_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/compaction"
	"github.com/lakehouse/lake/internal/testutil"
	"github.com/lakehouse/lake/replica"
	"github.com/lakehouse/lake/txlog"
)

// TestCloneDeepOfShallow deep-clones a shallow clone (local source, shallow clone on mem://,
// which also has files of its own, one of them under the same relative path as a source file)
// to a local directory: the deep copy has the shallow clone's rows, its log names every file by
// relative path, and a vacuum of the original (which breaks the shallow clone) leaves it
// readable.
func TestCloneDeepOfShallow(t *testing.T) {
	ctx := context.Background()
	orig, shal, deep := localURI(t), memURI(t), localURI(t)
	ot := createTable(t, orig, nil)
	for i := range 3 {
		appendRows(t, ot, i*10, 10)
	}
	if _, err := replica.Clone(ctx, orig, shal, &replica.CloneOptions{Shallow: true}); err != nil {
		t.Fatal(err)
	}
	stt := open(t, shal)
	appendRows(t, stt, 100, 4) // files of the shallow clone's own, by relative path
	// A file of the shallow clone's own under the same relative path as one of the original's:
	// the deep copy must keep both.
	osnap, _ := ot.Snapshot(ctx)
	clash := *osnap.Files()[0]
	data, err := ot.Bucket().ReadAll(ctx, clash.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := stt.Bucket().WriteAll(ctx, clash.Path, data, nil); err != nil {
		t.Fatal(err)
	}
	ssnap, _ := stt.Snapshot(ctx)
	txn := stt.Log().NewTransaction(ssnap, nil)
	clash.DataChange = true
	txn.AddActions(txlog.Action{Add: &clash})
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	ssnap, _ = stt.Snapshot(ctx)
	want := snapRows(t, stt, ssnap)
	if len(want) != 30+4+5 {
		t.Fatalf("the shallow clone has %d rows", len(want))
	}

	res, err := replica.Clone(ctx, shal, deep, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 9 || res.FilesCopied != 9 || res.MadeRelative != 6 {
		t.Fatalf("%+v", res)
	}
	dt := open(t, deep)
	if got := rows(t, dt, 0); !slices.Equal(got, want) {
		t.Fatalf("deep copy: %d rows, want %d", len(got), len(want))
	}
	dsnap, _ := dt.Snapshot(ctx)
	if _, ok := dsnap.Configuration()[replica.ShallowSourceProperty]; ok {
		t.Fatalf("the deep copy still names a shallow source: %v", dsnap.Configuration())
	}
	acts, err := txlog.DecodeActions(commitBytes(t, dt, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		if a.Add != nil && (strings.Contains(a.Add.Path, "://") || strings.HasPrefix(a.Add.Path, "file:")) {
			t.Fatalf("the deep copy's log names an absolute path: %s", a.Add.Path)
		}
	}
	paths := map[string]bool{}
	for _, f := range dsnap.Files() {
		paths[f.Path] = true
	}
	if len(paths) != 9 || !paths[clash.Path] {
		t.Fatalf("paths %v", paths)
	}

	// Vacuum the original after compacting it: its old files go, and the shallow clone breaks.
	if _, err := compaction.Optimize(ctx, ot, nil); err != nil {
		t.Fatal(err)
	}
	vres, err := compaction.Vacuum(ctx, ot, &compaction.VacuumOptions{Retention: time.Nanosecond, Force: true, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil || len(vres.Deleted) < 6 {
		t.Fatalf("vacuum: %+v, %v", vres, err)
	}
	_, err = replica.Clone(ctx, shal, localURI(t), nil)
	var mf *replica.MissingFileError
	if !errors.As(err, &mf) || mf.Src != ot.URI() {
		t.Fatalf("a deep clone of the broken shallow clone: %v", err)
	}
	dt2 := open(t, deep)
	if got := rows(t, dt2, 0); !slices.Equal(got, want) {
		t.Fatalf("after the original's vacuum the deep copy has %d rows, want %d", len(got), len(want))
	}

	// A retry of the same deep clone into a place holding its files reuses them.
	deep2 := localURI(t)
	if _, err := replica.Clone(ctx, deep, deep2, nil); err != nil {
		t.Fatal(err)
	}
}

// TestCloneDeepOfShallowWithDVs deep-clones a shallow clone of a table with deletion vectors
// (the shallow clone names them 'p', by absolute URI): the deep copy stores them as 'u' in its
// own root and reads the same rows.
func TestCloneDeepOfShallowWithDVs(t *testing.T) {
	ctx := context.Background()
	src := testutil.CorpusTable("table-with-dv-small")
	shal, deep := localURI(t), memURI(t)
	if _, err := replica.Clone(ctx, src, shal, &replica.CloneOptions{Shallow: true}); err != nil {
		t.Fatal(err)
	}
	want, ok := allRows(t, open(t, shal), 0)
	if !ok || len(want) == 0 {
		t.Fatal("the shallow clone cannot be read")
	}
	res, err := replica.Clone(ctx, shal, deep, nil)
	if err != nil {
		t.Fatal(err)
	}
	dt := open(t, deep)
	got, ok := allRows(t, dt, 0)
	if !ok || !slices.Equal(got, want) {
		t.Fatalf("deep copy: %d rows, want %d", len(got), len(want))
	}
	snap, _ := dt.Snapshot(ctx)
	dvs := 0
	for _, f := range snap.Files() {
		if dv := f.DeletionVector; dv != nil {
			if dv.StorageType != "u" {
				t.Fatalf("deletion vector %+v is not relative", dv)
			}
			dvs++
		}
	}
	if dvs == 0 {
		t.Fatal("no deletion vectors in the deep copy")
	}
	t.Logf("%d files (%d made relative), %d deletion vectors, %d files copied", res.Files, res.MadeRelative, dvs, res.FilesCopied)
}
