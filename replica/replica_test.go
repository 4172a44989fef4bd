package replica_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lakehouse/lake/replica"
	"github.com/lakehouse/lake/txlog"
)

// pairs are the store pairs the unit tests run on: memory to local disk and back.
var pairs = []struct {
	name     string
	src, dst func(t *testing.T) string
}{
	{"mem-local", memURI, localURI},
	{"local-mem", localURI, memURI},
}

func memURI(t *testing.T) string { return "mem://replica-test/" + uuid.NewString() }
func localURI(t *testing.T) string {
	return filepath.Join(t.TempDir(), "t")
}

func TestCloneDeep(t *testing.T) {
	ctx := context.Background()
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			src, dst, dst1 := p.src(t), p.dst(t), p.dst(t)
			st := createTable(t, src, map[string]string{"team": "recs"})
			appendRows(t, st, 0, 10)
			appendRows(t, st, 10, 10)
			v := appendRows(t, st, 20, 10)

			res, err := replica.Clone(ctx, src, dst, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.SourceVersion != v || res.FilesCopied != int64(res.Files) || res.Files != 6 {
				t.Fatalf("result %+v", res)
			}
			dt := open(t, dst)
			if got, want := rows(t, dt, 0), rows(t, st, v); !slices.Equal(got, want) || len(got) != 30 {
				t.Fatalf("rows differ: %d at dst, %d at src", len(got), len(want))
			}
			snap, _ := dt.Snapshot(ctx)
			ssnap, _ := st.Snapshot(ctx)
			if snap.Version() != 0 || snap.Metadata().ID == ssnap.Metadata().ID || snap.Metadata().ID != res.TableID {
				t.Fatalf("version %d, id %s (src %s)", snap.Version(), snap.Metadata().ID, ssnap.Metadata().ID)
			}
			if snap.Configuration()["team"] != "recs" || !slices.Equal(snap.PartitionColumns(), []string{"day"}) {
				t.Fatalf("metadata not kept: %+v", snap.Metadata())
			}
			for _, f := range snap.Files() {
				if strings.Contains(f.Path, "://") || f.Stats == "" || f.PartitionValues["day"] == nil {
					t.Fatalf("add not kept: %+v", f)
				}
			}
			h, err := dt.History(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			ci := h[0].CommitInfo
			if ci.Operation != "CLONE" || ci.OperationParameters["sourceVersion"] != float64(v) || ci.OperationParameters["isShallow"] != false || ci.OperationParameters["source"] != st.URI() {
				t.Fatalf("commitInfo %+v", ci)
			}

			// An older version.
			one := int64(1)
			if _, err := replica.Clone(ctx, src, dst1, &replica.CloneOptions{Version: &one}); err != nil {
				t.Fatal(err)
			}
			if got, want := rows(t, open(t, dst1), 0), rows(t, st, 1); !slices.Equal(got, want) || len(got) != 10 {
				t.Fatalf("clone of version 1: %d rows, want %d", len(got), len(want))
			}

			// A non-empty destination is refused.
			_, err = replica.Clone(ctx, src, dst, nil)
			if !errors.Is(err, replica.ErrNotEmpty) || !strings.Contains(err.Error(), "_delta_log") {
				t.Fatalf("clone into a table: %v", err)
			}
		})
	}
}

func TestCloneRefusesForeignObject(t *testing.T) {
	ctx := context.Background()
	src, dst := memURI(t), memURI(t)
	st := createTable(t, src, nil)
	appendRows(t, st, 0, 5)
	dt := createTable(t, dst+"/other", nil) // an object under dst
	_ = dt
	_, err := replica.Clone(ctx, src, dst, nil)
	if !errors.Is(err, replica.ErrNotEmpty) {
		t.Fatalf("got %v", err)
	}
}

func TestCloneShallow(t *testing.T) {
	ctx := context.Background()
	src, dst := localURI(t), localURI(t)
	st := createTable(t, src, nil)
	appendRows(t, st, 0, 10)
	var copies atomic.Int64
	res, err := replica.Clone(ctx, src, dst, &replica.CloneOptions{Shallow: true, Options: replica.Options{OnCopy: func(string, int64) { copies.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	if copies.Load() != 0 || res.FilesCopied != 0 {
		t.Fatalf("a shallow clone copied %d files", copies.Load())
	}
	dt := open(t, dst)
	snap, err := dt.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Configuration()[replica.ShallowSourceProperty] != st.URI() {
		t.Fatalf("configuration %v", snap.Configuration())
	}
	for _, f := range snap.Files() {
		if !strings.HasPrefix(f.Path, "file://"+filepath.ToSlash(st.LocalDir())+"/") {
			t.Fatalf("path %s is not an absolute URI into %s", f.Path, st.LocalDir())
		}
	}
	h, _ := dt.History(ctx, 1)
	if h[0].CommitInfo.OperationParameters["isShallow"] != true {
		t.Fatalf("commitInfo %+v", h[0].CommitInfo)
	}
	// The clone reads its source's files, local or on an object store.
	if got, want := snapRows(t, dt, snap), rows(t, st, 1); !slices.Equal(got, want) || len(got) != 10 {
		t.Fatalf("shallow clone rows %v, source rows %v", got, want)
	}
	msrc := "mem://shallow-src-" + uuid.NewString()
	mst := createTable(t, msrc, nil)
	appendRows(t, mst, 100, 5)
	mdst := localURI(t)
	if _, err := replica.Clone(ctx, msrc, mdst, &replica.CloneOptions{Shallow: true}); err != nil {
		t.Fatal(err)
	}
	mdt := open(t, mdst)
	msnap, _ := mdt.Snapshot(ctx)
	if got, want := snapRows(t, mdt, msnap), rows(t, mst, 1); !slices.Equal(got, want) || len(got) != 5 {
		t.Fatalf("shallow clone of mem:// rows %v, source rows %v", got, want)
	}
}

func TestSyncMirrorsEveryVersion(t *testing.T) {
	ctx := context.Background()
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			src, dst := p.src(t), p.dst(t)
			st := createTable(t, src, map[string]string{"delta.checkpointInterval": "3"})
			for i := range 4 {
				appendRows(t, st, i*10, 10)
			}
			res, err := replica.Sync(ctx, src, dst, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.From != 0 || res.To != 4 || res.FilesCopied != 8 {
				t.Fatalf("first sync %+v", res)
			}
			dt := open(t, dst)
			for v := int64(0); v <= 4; v++ {
				if string(commitBytes(t, dt, v)) != string(commitBytes(t, st, v)) {
					t.Fatalf("version %d differs", v)
				}
				if got, want := rows(t, dt, v), rows(t, st, v); !slices.Equal(got, want) {
					t.Fatalf("version %d: %d rows at dst, %d at src", v, len(got), len(want))
				}
			}
			if ok, _ := dt.Bucket().Exists(ctx, fmt.Sprintf("_delta_log/%020d.checkpoint.parquet", 3)); !ok {
				t.Fatal("no checkpoint at version 3 on the replica")
			}
			// Up to date: nothing to do.
			res, err = replica.Sync(ctx, src, dst, nil)
			if err != nil || res.From <= res.To || res.FilesCopied != 0 {
				t.Fatalf("second sync %+v, %v", res, err)
			}
			// Incremental.
			v := appendRows(t, st, 100, 5)
			res, err = replica.Sync(ctx, src, dst, nil)
			if err != nil || res.From != v || res.To != v || res.FilesCopied != 2 {
				t.Fatalf("incremental sync %+v, %v", res, err)
			}
			if got, want := rows(t, dt, v), rows(t, st, v); !slices.Equal(got, want) || len(got) != 45 {
				t.Fatalf("latest: %d rows at dst, %d at src", len(got), len(want))
			}
		})
	}
}

func TestSyncBootstrapsFromCheckpoint(t *testing.T) {
	ctx := context.Background()
	src, dst := localURI(t), memURI(t)
	st := createTable(t, src, map[string]string{"delta.checkpointInterval": "2"})
	for i := range 5 {
		appendRows(t, st, i*10, 10)
	}
	// Clean up the commits before the checkpoint at 4 (as log retention would).
	for v := int64(0); v < 4; v++ {
		if err := st.Bucket().Delete(ctx, txlog.CommitKey(v)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := replica.Sync(ctx, src, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Bootstrapped || res.From != 5 || res.To != 5 {
		t.Fatalf("result %+v", res)
	}
	dt := open(t, dst)
	for _, v := range []int64{4, 5} {
		if got, want := rows(t, dt, v), rows(t, st, v); !slices.Equal(got, want) {
			t.Fatalf("version %d: %d rows at dst, %d at src", v, len(got), len(want))
		}
	}
	if _, err := dt.SnapshotAt(ctx, 3); !errors.Is(err, txlog.ErrVersionNotFound) {
		t.Fatalf("version 3 at the replica: %v", err)
	}
	// Resumes from the checkpoint.
	v := appendRows(t, st, 100, 3)
	if res, err := replica.Sync(ctx, src, dst, nil); err != nil || res.To != v || res.Bootstrapped {
		t.Fatalf("%+v %v", res, err)
	}
	if got, want := rows(t, dt, v), rows(t, st, v); !slices.Equal(got, want) {
		t.Fatal("rows differ after the resumed sync")
	}
}

func TestSyncRefusesDivergedDestination(t *testing.T) {
	ctx := context.Background()
	src, dst := memURI(t), localURI(t)
	st := createTable(t, src, nil)
	appendRows(t, st, 0, 10)
	if _, err := replica.Sync(ctx, src, dst, nil); err != nil {
		t.Fatal(err)
	}
	// Someone writes to the replica; the source moves on too.
	dt := open(t, dst)
	appendRows(t, dt, 500, 1)
	appendRows(t, st, 10, 10)
	before := commitBytes(t, dt, 2)
	_, err := replica.Sync(ctx, src, dst, nil)
	var de *replica.DivergedError
	if !errors.As(err, &de) || !errors.Is(err, replica.ErrDiverged) || de.Version != 2 {
		t.Fatalf("got %v", err)
	}
	if string(commitBytes(t, dt, 2)) != string(before) {
		t.Fatal("the replica's commit was overwritten")
	}
	// Another table entirely.
	other := memURI(t)
	ot := createTable(t, other, nil)
	appendRows(t, ot, 0, 10)
	appendRows(t, ot, 0, 10)
	if _, err := replica.Sync(ctx, src, other, nil); !errors.Is(err, replica.ErrDiverged) {
		t.Fatalf("sync into another table: %v", err)
	}
	// Ahead of the source.
	small := memURI(t)
	createTable(t, small, nil)
	if _, err := replica.Sync(ctx, small, dst, nil); !errors.Is(err, replica.ErrDiverged) {
		t.Fatalf("sync into a replica ahead of the source: %v", err)
	}
}

func TestSyncMissingFile(t *testing.T) {
	ctx := context.Background()
	src, dst := localURI(t), memURI(t)
	st := createTable(t, src, nil)
	appendRows(t, st, 0, 10)
	v := appendRows(t, st, 10, 10)
	snap, _ := st.SnapshotAt(ctx, v)
	victim := snap.Files()[0].Path
	if err := st.Bucket().Delete(ctx, victim); err != nil {
		t.Fatal(err)
	}
	_, err := replica.Sync(ctx, src, dst, nil)
	var mf *replica.MissingFileError
	if !errors.As(err, &mf) || mf.Path != victim || !strings.Contains(err.Error(), "lake clone") {
		t.Fatalf("got %v", err)
	}
}

// TestSyncResumesAfterCrash cancels a sync after a few verified copies, then runs it again: the
// replica converges and no file is copied twice after it was verified.
func TestSyncResumesAfterCrash(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			src, dst := p.src(t), p.dst(t)
			st := createTable(t, src, nil)
			for i := range 6 {
				appendRows(t, st, i*10, 10)
			}
			var mu sync.Mutex
			copied := map[string]int{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := &replica.SyncOptions{BatchCommits: 2, Options: replica.Options{Concurrency: 2, OnCopy: func(path string, _ int64) {
				mu.Lock()
				defer mu.Unlock()
				copied[path]++
				if len(copied) == 5 {
					cancel() // the crash: mid-batch
				}
			}}}
			if _, err := replica.Sync(ctx, src, dst, opts); err == nil {
				t.Fatal("the interrupted sync did not fail")
			}
			res, err := replica.Sync(context.Background(), src, dst, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.FilesSkipped == 0 {
				t.Fatalf("the rerun skipped nothing: %+v", res)
			}
			for p, n := range copied {
				if n != 1 {
					t.Fatalf("%s copied %d times", p, n)
				}
			}
			if len(copied) != 12 {
				t.Fatalf("%d files copied in all, want 12", len(copied))
			}
			dt := open(t, dst)
			if got, want := rows(t, dt, 6), rows(t, st, 6); !slices.Equal(got, want) || len(got) != 60 {
				t.Fatalf("%d rows at dst, %d at src", len(got), len(want))
			}
		})
	}
}

// TestSyncWhileWriting follows a source that a writer appends to; after the writer stops, a
// final sync makes the replica equal at every version.
func TestSyncWhileWriting(t *testing.T) {
	ctx := context.Background()
	src, dst := memURI(t), localURI(t)
	st := createTable(t, src, map[string]string{"delta.checkpointInterval": "5"})
	fctx, stop := context.WithCancel(ctx)
	followErr := make(chan error, 1)
	go func() {
		followErr <- replica.Follow(fctx, src, dst, 5*time.Millisecond, nil, nil)
	}()
	var last int64
	for i := range 12 {
		last = appendRows(t, st, i*10, 10)
	}
	stop()
	if err := <-followErr; err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Sync(ctx, src, dst, nil); err != nil {
		t.Fatal(err)
	}
	dt := open(t, dst)
	for v := int64(0); v <= last; v++ {
		if got, want := rows(t, dt, v), rows(t, st, v); !slices.Equal(got, want) {
			t.Fatalf("version %d: %d rows at dst, %d at src", v, len(got), len(want))
		}
	}
}

// TestCopyVerification checks which copies are verified by MD5 (where either store reports
// one) and that a file at the destination with the wrong size is copied again, not trusted.
func TestCopyVerification(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name            string
		src, dst        func(t *testing.T) string
		wantChecksummed bool
	}{
		{"mem-mem", memURI, memURI, true},     // both stores report MD5s
		{"mem-local", memURI, localURI, true}, // the bytes sent are hashed against the source's
		{"local-mem", localURI, memURI, true}, // ... against the destination's
		{"local-local", localURI, localURI, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, dst := c.src(t), c.dst(t)
			st := createTable(t, src, nil)
			v := appendRows(t, st, 0, 10)
			res, err := replica.Clone(ctx, src, dst, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int64{true: res.FilesCopied, false: 0}[c.wantChecksummed]; res.FilesChecksummed != want || res.FilesCopied != 2 || res.SourceVersion != v {
				t.Fatalf("%+v", res)
			}
		})
	}

	src, dst := memURI(t), localURI(t)
	st := createTable(t, src, nil)
	v := appendRows(t, st, 0, 10)
	snap, _ := st.Snapshot(ctx)
	// A truncated leftover at the destination under the name of a data file.
	if err := writeFile(dst, snap.Files()[0].Path, []byte("torn")); err != nil {
		t.Fatal(err)
	}
	res, err := replica.Sync(ctx, src, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesSkipped != 0 || res.FilesCopied != 2 {
		t.Fatalf("%+v", res)
	}
	if got, want := rows(t, open(t, dst), v), rows(t, st, v); !slices.Equal(got, want) {
		t.Fatal("rows differ")
	}
}

// A source whose version 0 survives but whose later early commits are gone starts at the
// checkpoint too.
func TestSyncBootstrapsPastGap(t *testing.T) {
	ctx := context.Background()
	src, dst := memURI(t), memURI(t)
	st := createTable(t, src, map[string]string{"delta.checkpointInterval": "2"})
	for i := range 3 {
		appendRows(t, st, i*10, 10)
	}
	if err := st.Bucket().Delete(ctx, txlog.CommitKey(1)); err != nil {
		t.Fatal(err)
	}
	res, err := replica.Sync(ctx, src, dst, nil)
	if err != nil || !res.Bootstrapped || res.To != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	if got, want := rows(t, open(t, dst), 3), rows(t, st, 3); !slices.Equal(got, want) || len(got) != 30 {
		t.Fatal("rows differ")
	}
}

// An empty replica of a source whose oldest files were vacuumed starts at the version that
// removed them (written as a checkpoint at the replica), not at version 0.
func TestSyncStartsAfterVacuumedFiles(t *testing.T) {
	ctx := context.Background()
	src, dst := localURI(t), memURI(t)
	st := createTable(t, src, nil)
	for i := range 3 {
		appendRows(t, st, i*10, 10)
	}
	// Version 4 removes version 1's files, which vacuum then deletes.
	snap, _ := st.Snapshot(ctx)
	v1, _ := st.SnapshotAt(ctx, 1)
	txn := st.Log().NewTransaction(snap, &txlog.TxnOptions{Operation: "DELETE"})
	now := time.Now().UnixMilli()
	for _, f := range v1.Files() {
		txn.AddActions(txlog.Action{Remove: &txlog.Remove{Path: f.Path, DeletionTimestamp: &now, DataChange: true}})
	}
	if v, err := txn.Commit(ctx); err != nil || v != 4 {
		t.Fatal(v, err)
	}
	for _, f := range v1.Files() {
		if err := st.Bucket().Delete(ctx, f.Path); err != nil {
			t.Fatal(err)
		}
	}
	appendRows(t, st, 100, 10)
	res, err := replica.Sync(ctx, src, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Bootstrapped || res.From != 5 || res.To != 5 {
		t.Fatalf("%+v", res)
	}
	dt := open(t, dst)
	for _, v := range []int64{4, 5} {
		if got, want := rows(t, dt, v), rows(t, st, v); !slices.Equal(got, want) || len(got) == 0 {
			t.Fatalf("version %d: %d rows at dst, %d at src", v, len(got), len(want))
		}
	}
	// A replica with versions is not restarted: a file missing later is an error.
	appendRows(t, st, 200, 10)
	v6, _ := st.SnapshotAt(ctx, 6)
	for _, f := range v6.Files() {
		if !slices.ContainsFunc(v1.Files(), func(a *txlog.Add) bool { return a.Path == f.Path }) {
			st.Bucket().Delete(ctx, f.Path)
		}
	}
	var mf *replica.MissingFileError
	if _, err := replica.Sync(ctx, src, dst, nil); !errors.As(err, &mf) || mf.Version != 6 {
		t.Fatalf("got %v", err)
	}
}
