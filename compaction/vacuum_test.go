package compaction

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// history is a random table history on a local directory with files of chosen ages.
type history struct {
	tb      *table.Table
	dir     string
	now     time.Time
	modTime map[string]time.Time // every data or temp file written, by key
}

func (h *history) writeFile(t *testing.T, key string, age time.Duration) {
	t.Helper()
	p := filepath.Join(h.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("data of "+key), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := h.now.Add(-age)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
	h.modTime[key] = mt
}

func randomHistory(t *testing.T, seed uint64) *history {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 99))
	dir := t.TempDir()
	tb, err := table.Create(ctx, dir, table.InteractionSchema(), &table.CreateOptions{
		PartitionColumns: []string{"event_date"}, Properties: map[string]string{"delta.checkpointInterval": "5"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	h := &history{tb: tb, dir: dir, now: time.Now(), modTime: map[string]time.Time{}}
	age := func() time.Duration { return time.Duration(r.Int64N(int64(20 * 24 * time.Hour))) }
	var active []txlog.Add
	n := 0
	commits := 5 + r.IntN(20)
	for c := 0; c < commits; c++ {
		snap, err := tb.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		txn := tb.Log().NewTransaction(snap, nil)
		var acts []txlog.Action
		for i := r.IntN(4); i > 0; i-- {
			day := fmt.Sprintf("2024-01-0%d", 1+r.IntN(3))
			key := fmt.Sprintf("event_date=%s/part-%04d.parquet", day, n)
			n++
			h.writeFile(t, key, age())
			a := txlog.Add{Path: key, PartitionValues: map[string]*string{"event_date": &day}, Size: 10, DataChange: true, ModificationTime: h.modTime[key].UnixMilli()}
			active = append(active, a)
			acts = append(acts, txlog.Action{Add: &a})
		}
		for i := r.IntN(3); i > 0 && len(active) > 0; i-- {
			j := r.IntN(len(active))
			a := active[j]
			active = slices.Delete(active, j, j+1)
			ts := h.now.Add(-age()).UnixMilli()
			acts = append(acts, txlog.Action{Remove: &txlog.Remove{Path: a.Path, DeletionTimestamp: &ts, DataChange: true, PartitionValues: a.PartitionValues}})
		}
		if len(acts) == 0 {
			continue
		}
		txn.AddActions(acts...)
		if _, err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Files no commit references: a crashed writer's data files and temp files.
	for i := r.IntN(5); i > 0; i-- {
		h.writeFile(t, fmt.Sprintf("event_date=2024-01-09/orphan-%d.parquet", i), age())
	}
	for i := r.IntN(3); i > 0; i-- {
		h.writeFile(t, fmt.Sprintf("%sorphan-%d.tmp", TempDir, i), age())
	}
	// A hidden folder and a file at the root that are old and unreferenced.
	h.writeFile(t, "_hidden/old.bin", 30*24*time.Hour)
	return h
}

// Vacuum never deletes a file a snapshot inside the retention references, nor one younger
// than the retention; it deletes everything else outside the log and hidden folders; and a dry
// run lists exactly what the real run deletes. LAKE_PROPERTY_SEEDS (default 8) sets the number
// of histories.
func TestVacuumPropertyRandomHistories(t *testing.T) {
	ctx := context.Background()
	seeds := uint64(envInt("LAKE_PROPERTY_SEEDS", 8))
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := randomHistory(t, seed)
			snap, err := h.tb.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var keepVersions []int64
			if seed%3 == 0 && snap.Version() > 2 {
				keepVersions = []int64{snap.Version() / 2}
			}
			ret := 7 * 24 * time.Hour
			cutoff := h.now.Add(-ret)
			must := map[string]string{} // key -> why it must stay
			for _, a := range snap.Files() {
				must[a.Path] = "active"
			}
			for _, rm := range snap.Tombstones(h.now) {
				if *rm.DeletionTimestamp >= cutoff.UnixMilli() {
					must[rm.Path] = "tombstone inside the retention"
				}
			}
			for _, v := range keepVersions {
				s, err := h.tb.SnapshotAt(ctx, v)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range s.Files() {
					must[a.Path] = "kept version"
				}
			}
			for k, mt := range h.modTime {
				if !mt.Before(cutoff) {
					must[k] = "younger than the retention"
				}
			}
			clock := func() time.Time { return h.now }
			dry, err := Vacuum(ctx, h.tb, &VacuumOptions{DryRun: true, KeepVersions: keepVersions, Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Vacuum(ctx, h.tb, &VacuumOptions{KeepVersions: keepVersions, Now: clock, Parallelism: 3})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dry.Deleted, res.Deleted) {
				t.Fatalf("dry run listed %v, real run deleted %v", dry.Deleted, res.Deleted)
			}
			t.Logf("%d files written, %d deleted, %d must stay", len(h.modTime), len(res.Deleted), len(must))
			deleted := map[string]bool{}
			for _, k := range res.Deleted {
				deleted[k] = true
				if why, ok := must[k]; ok {
					t.Errorf("deleted %s, which is %s", k, why)
				}
				if strings.HasPrefix(k, "_") {
					t.Errorf("deleted %s in a hidden folder or the log", k)
				}
				if _, err := os.Stat(filepath.Join(h.dir, k)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s still exists: %v", k, err)
				}
			}
			for k := range h.modTime {
				if _, ok := must[k]; !ok && !deleted[k] && !strings.HasPrefix(k, "_") {
					t.Errorf("%s should have been deleted", k)
				}
				if _, ok := must[k]; ok {
					if _, err := os.Stat(filepath.Join(h.dir, k)); err != nil {
						t.Errorf("%s must stay: %v", k, err)
					}
				}
			}
			// The table still loads, and a second vacuum finds nothing.
			again, err := Vacuum(ctx, h.tb, &VacuumOptions{KeepVersions: keepVersions, Now: clock})
			if err != nil || len(again.Deleted) != 0 {
				t.Fatalf("second vacuum: %v, %v", again, err)
			}
		})
	}
}

func TestVacuumRetentionCheck(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	_, err := Vacuum(ctx, tb, &VacuumOptions{Retention: time.Hour})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("short retention: %v", err)
	}
	if _, err := Vacuum(ctx, tb, &VacuumOptions{Retention: time.Hour, Force: true}); err != nil {
		t.Fatal(err)
	}
	tb2 := newTable(t, memURI(), map[string]string{"delta.deletedFileRetentionDuration": "interval 1 hours"})
	res, err := Vacuum(ctx, tb2, &VacuumOptions{DryRun: true})
	if err != nil || res.Retention != time.Hour {
		t.Fatalf("table retention: %+v, %v", res, err)
	}
}

// After optimize, the old small files stay until the retention has passed; then vacuum deletes
// exactly them, and the table reads the same rows.
func TestVacuumAfterOptimize(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	for _, r := range rowsN(10, 2, "e") {
		appendRows(t, tb, []row{r})
	}
	before := latest(t, tb)
	if _, err := Optimize(ctx, tb, nil); err != nil {
		t.Fatal(err)
	}
	want := canonicalRows(t, tb, latest(t, tb))
	res, err := Vacuum(ctx, tb, nil)
	if err != nil || len(res.Deleted) != 0 {
		t.Fatalf("vacuum inside the retention: %+v, %v", res, err)
	}
	later := func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
	res, err = Vacuum(ctx, tb, &VacuumOptions{Now: later})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != 10 || res.Bytes == 0 {
		t.Fatalf("vacuum after the retention deleted %d files: %v", len(res.Deleted), res.Deleted)
	}
	for _, a := range before.Files() {
		if !slices.Contains(res.Deleted, a.Path) {
			t.Errorf("old file %s not deleted", a.Path)
		}
	}
	if got := canonicalRows(t, tb, latest(t, tb)); !slices.Equal(got, want) {
		t.Fatal("rows changed after vacuum")
	}
}

func TestVacuumRemovesLocalTempLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tb := newTable(t, dir, nil)
	appendRows(t, tb, rowsN(3, 1, "e"))
	h := &history{tb: tb, dir: dir, now: time.Now(), modTime: map[string]time.Time{}}
	h.writeFile(t, TempDir+"old.tmp", 10*24*time.Hour)
	h.writeFile(t, TempDir+"young.tmp", time.Hour)
	h.writeFile(t, "event_date=2024-01-05/uncommitted.parquet", 10*24*time.Hour)
	res, err := Vacuum(ctx, tb, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{TempDir + "old.tmp", "event_date=2024-01-05/uncommitted.parquet"}
	slices.Sort(want)
	if !slices.Equal(res.Deleted, want) || res.TempFiles != 1 {
		t.Fatalf("deleted %v (temp %d), want %v", res.Deleted, res.TempFiles, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "event_date=2024-01-05")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty partition folder left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, TempDir, "young.tmp")); err != nil {
		t.Error(err)
	}
	if got := len(canonicalRows(t, tb, latest(t, tb))); got != 3 {
		t.Fatalf("rows: %d", got)
	}
}
