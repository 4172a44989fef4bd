package table_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse/lake/internal/storage/storagetest"
	"github.com/lakehouse/lake/internal/testutil"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

func setCommitTimes(t *testing.T, dir string, first int64, times []time.Time) {
	t.Helper()
	for i, ts := range times {
		p := filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", first+int64(i)))
		if err := os.Chtimes(p, ts, ts); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTimeTravelByTimestamp(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2020, 5, 1, 22, 47, 31, 0, time.FixedZone("PDT", -7*3600))
	for _, tc := range []struct {
		name  string
		first int64
		n     int
	}{{"simple_table", 0, 5}, {"checkpoints_vacuumed", 5, 8}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testutil.CopyTable(t, tc.name)
			var times []time.Time
			for i := range tc.n {
				times = append(times, base.Add(time.Duration(i)*24*time.Hour))
			}
			setCommitTimes(t, dir, tc.first, times)
			tbl, err := table.Open(ctx, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Close()
			for i, ts := range times {
				want := tc.first + int64(i)
				for _, at := range []time.Time{ts, ts.Add(time.Hour)} {
					s, err := tbl.SnapshotAsOf(ctx, at)
					if err != nil || s.Version() != want {
						t.Fatalf("as of %s: version %v err %v, want %d", at, s, err, want)
					}
				}
			}
			// After the last commit: the latest; before the first: an error.
			s, err := tbl.SnapshotAsOf(ctx, base.Add(1000*time.Hour))
			if err != nil || s.Version() != tc.first+int64(tc.n)-1 {
				t.Fatalf("far future: %v", err)
			}
			if _, err := tbl.SnapshotAsOf(ctx, base.Add(-time.Hour)); !errors.Is(err, txlog.ErrVersionNotFound) {
				t.Fatalf("before the first commit: want ErrVersionNotFound, got %v", err)
			}
		})
	}
}

// Commit times that go backwards are made monotonic: a commit no later than its predecessor
// counts as 1 ms after it.
func TestTimeTravelMonotonic(t *testing.T) {
	ctx := context.Background()
	dir := testutil.CopyTable(t, "simple_table")
	base := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	setCommitTimes(t, dir, 0, []time.Time{base, base.Add(time.Hour), base.Add(30 * time.Minute), base.Add(2 * time.Hour), base.Add(3 * time.Hour)})
	tbl, err := table.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	h, err := tbl.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h[2].Version != 2 || h[2].Timestamp != base.Add(time.Hour).UnixMilli()+1 {
		t.Fatalf("version 2 timestamp %d, want %d", h[2].Timestamp, base.Add(time.Hour).UnixMilli()+1)
	}
	s, err := tbl.SnapshotAsOf(ctx, base.Add(45*time.Minute))
	if err != nil || s.Version() != 0 {
		t.Fatalf("45 min: %v %v", s, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := table.Open(ctx, t.TempDir(), nil); !errors.Is(err, txlog.ErrNotATable) {
		t.Fatalf("empty dir: want ErrNotATable, got %v", err)
	}
	_, err := table.Open(ctx, "ftp://x/y", nil)
	if err == nil || !strings.Contains(err.Error(), "ftp://x/y") {
		t.Fatalf("unknown scheme: want an error naming the URI, got %v", err)
	}
	dir := t.TempDir()
	if _, err := table.Create(ctx, dir, table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("bad partition column: %v", err)
	}
	if _, err := table.Create(ctx, dir, table.InteractionSchema(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := table.Create(ctx, dir, table.InteractionSchema(), nil); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create: %v", err)
	}
}

// The commit protocol on every store: concurrent writers through separate table handles each
// land exactly once, versions contiguous, and a table written on the store reads back.
func TestConcurrentCommitsEveryBackend(t *testing.T) {
	ctx := context.Background()
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			uri := b.URI(t)
			tbl, err := table.Create(ctx, uri, table.InteractionSchema(), &table.CreateOptions{
				PartitionColumns: []string{"event_date"},
				Properties:       map[string]string{"delta.checkpointInterval": "5"},
			})
			if err != nil {
				t.Fatal(err)
			}
			tbl.Close()
			const writers, each = 4, 5
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tw, err := table.Open(ctx, uri, nil)
					if err != nil {
						errs <- err
						return
					}
					defer tw.Close()
					for i := range each {
						snap, err := tw.Snapshot(ctx)
						if err != nil {
							errs <- err
							return
						}
						txn := tw.Log().NewTransaction(snap, nil)
						txn.AddActions(dayFile("2024-01-01", fmt.Sprintf("w%d-%d.parquet", w, i), ""))
						if _, err := txn.Commit(ctx); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			tr, err := table.Open(ctx, uri, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			snap, err := tr.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if snap.Version() != writers*each || snap.NumFiles() != writers*each {
				t.Fatalf("version %d files %d, want %d", snap.Version(), snap.NumFiles(), writers*each)
			}
			h, err := tr.History(ctx, 0)
			if err != nil || len(h) != writers*each+1 {
				t.Fatalf("history %d entries: %v", len(h), err)
			}
			lc, err := tr.Log().ReadLastCheckpoint(ctx)
			if err != nil || lc == nil || lc.Version != 20 {
				t.Fatalf("automatic checkpoint at 20: %+v %v", lc, err)
			}
		})
	}
}

// dayFile is an add action for a file in one event_date partition, with optional JSON stats.
func dayFile(day, name, stats string) txlog.Action {
	return txlog.Action{Add: &txlog.Add{Path: "event_date=" + day + "/" + name,
		PartitionValues: map[string]*string{"event_date": &day}, Size: 1, DataChange: true, Stats: stats}}
}

// A remove that names a file by its absolute URI, as some writers do, removes exactly the add that
// named it relative to the table's root (a local table opened by a relative path included), even
// where another active file's path is also a suffix of the URI.
func TestRemoveByAbsoluteURI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	schema := &txlog.StructType{Fields: []txlog.StructField{{Name: "id", Type: txlog.String, Nullable: true}}}
	tb, err := table.Create(ctx, dir, schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb.Close()
	commit := func(v int64, acts ...txlog.Action) {
		b, err := txlog.EncodeActions(acts)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", v)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UnixMilli()
	commit(1, txlog.Action{Add: &txlog.Add{Path: "a%20b.parquet", Size: 1, ModificationTime: now, DataChange: true}},
		txlog.Action{Add: &txlog.Add{Path: "x/a%20b.parquet", Size: 1, ModificationTime: now, DataChange: true}},
		txlog.Action{Add: &txlog.Add{Path: "c.parquet", Size: 1, ModificationTime: now, DataChange: true}})
	commit(2, txlog.Action{Remove: &txlog.Remove{Path: "file://" + filepath.ToSlash(dir) + "/x/a b.parquet", DeletionTimestamp: &now, DataChange: true}})
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, dir)
	if err != nil {
		rel = dir
	}
	for _, uri := range []string{dir, rel, "file://" + filepath.ToSlash(dir)} {
		tb, err := table.Open(ctx, uri, nil)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := tb.Snapshot(ctx)
		tb.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range snap.Files() {
			got = append(got, f.Path)
		}
		slices.Sort(got)
		if fmt.Sprint(got) != "[a%20b.parquet c.parquet]" {
			t.Errorf("opened as %s: active files %v, want a%%20b.parquet and c.parquet", uri, got)
		}
	}
}
