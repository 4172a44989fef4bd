package compaction

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/txlog"
)

func TestOptimizeCompactsSmallFiles(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), map[string]string{"delta.checkpointInterval": "25"})
	rows := rowsN(60, 3, "e")
	for _, r := range rows {
		appendRows(t, tb, []row{r})
	}
	before := latest(t, tb)
	if before.NumFiles() != 60 {
		t.Fatalf("files before: %d", before.NumFiles())
	}
	want := canonicalRows(t, tb, before)

	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	res, err := Optimize(ctx, tb, &OptimizeOptions{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	if len(res.Versions) != 1 || res.FilesRemoved != 60 || res.FilesAdded != 3 || res.Rows != 60 || res.BinsDropped != 0 {
		t.Fatalf("result: %+v", res)
	}
	after := latest(t, tb)
	for p, n := range filesPerPartition(after) {
		if n != 1 {
			t.Errorf("partition %q has %d files", p, n)
		}
	}
	if got := canonicalRows(t, tb, after); !slices.Equal(got, want) {
		t.Fatalf("rows changed:\n got %v\nwant %v", got, want)
	}
	// Time travel to before the optimize still reads the old files.
	old, err := tb.SnapshotAt(ctx, before.Version())
	if err != nil {
		t.Fatal(err)
	}
	if old.NumFiles() != 60 || !slices.Equal(canonicalRows(t, tb, old), want) {
		t.Fatal("time travel before optimize does not return the old rows")
	}
	// The commit: OPTIMIZE, dataChange=false everywhere, metrics.
	data, err := tb.Bucket().ReadAll(ctx, txlog.CommitKey(res.Versions[0]))
	if err != nil {
		t.Fatal(err)
	}
	acts, err := txlog.DecodeActions(data)
	if err != nil {
		t.Fatal(err)
	}
	var adds, removes int
	for _, a := range acts {
		switch {
		case a.CommitInfo != nil:
			ci := a.CommitInfo
			if ci.Operation != "OPTIMIZE" || ci.OperationMetrics["numRemovedFiles"] != "60" || ci.OperationMetrics["numAddedFiles"] != "3" ||
				ci.OperationMetrics["numRemovedBytes"] == nil || ci.OperationMetrics["numAddedBytes"] == nil || *ci.IsBlindAppend {
				t.Errorf("commitInfo: %+v", ci)
			}
		case a.Add != nil:
			adds++
			if a.Add.DataChange || a.Add.Stats == "" {
				t.Errorf("add: %+v", a.Add)
			}
		case a.Remove != nil:
			removes++
			if a.Remove.DataChange || a.Remove.DeletionTimestamp == nil || a.Remove.Size == nil {
				t.Errorf("remove: %+v", a.Remove)
			}
		}
	}
	if adds != 3 || removes != 60 {
		t.Fatalf("commit has %d adds, %d removes", adds, removes)
	}
	// A second run finds nothing to do.
	res, err = Optimize(ctx, tb, nil)
	if err != nil || len(res.Versions) != 0 || res.Bins != 0 {
		t.Fatalf("second optimize: %+v, %v", res, err)
	}
}

func TestOptimizeWhere(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	for _, r := range rowsN(12, 3, "e") {
		appendRows(t, tb, []row{r})
	}
	f, _ := reader.ParseFilter("event_date = 2024-01-02")
	res, err := Optimize(ctx, tb, &OptimizeOptions{Where: []reader.Filter{f}})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesConsidered != 4 || res.FilesRemoved != 4 || res.FilesAdded != 1 {
		t.Fatalf("result: %+v", res)
	}
	counts := filesPerPartition(latest(t, tb))
	if n := counts[partKey(map[string]*string{"event_date": ptr("2024-01-02")})]; n != 1 {
		t.Fatalf("selected partition has %d files: %v", n, counts)
	}
	if n := counts[partKey(map[string]*string{"event_date": ptr("2024-01-01")})]; n != 4 {
		t.Fatalf("other partition has %d files: %v", n, counts)
	}
	bad, _ := reader.ParseFilter("user_id = u1")
	_, err = Optimize(ctx, tb, &OptimizeOptions{Where: []reader.Filter{bad}})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("filter on a data column: %v", err)
	}
	for _, z := range [][]string{{"nope"}, {"event_date"}, {"properties"}, {"item_id", "item_id"}} {
		if _, err := Optimize(ctx, tb, &OptimizeOptions{ZOrderBy: z}); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("ZOrderBy %v: %v", z, err)
		}
	}
}

func ptr(s string) *string { return &s }

// A blind append that wins the race for the optimize's version does not conflict with it.
func TestOptimizeConcurrentAppendDoesNotConflict(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	for _, r := range rowsN(20, 2, "e") {
		appendRows(t, tb, []row{r})
	}
	extra := rowsN(5, 2, "x")
	testHookBeforeCommit = func([]*bin) { appendRows(t, tb, extra) }
	defer func() { testHookBeforeCommit = nil }()
	res, err := Optimize(ctx, tb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Versions) != 1 || res.BinsDropped != 0 || len(res.Conflicts) != 0 {
		t.Fatalf("result: %+v", res)
	}
	snap := latest(t, tb)
	if got := len(canonicalRows(t, tb, snap)); got != 25 {
		t.Fatalf("rows: %d", got)
	}
}

// Appends from another goroutine while optimize runs: nobody fails, every row is there.
func TestOptimizeWithLiveWriter(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	for _, r := range rowsN(30, 3, "e") {
		appendRows(t, tb, []row{r})
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	written := 30
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := appendRowsErr(tb, []row{{id: fmt.Sprintf("live%04d", i), user: "u", item: "i", day: i % 3}}); err != nil {
				t.Error(err)
				return
			}
			written++
		}
	})
	for i := 0; i < 3; i++ {
		if _, err := Optimize(ctx, tb, &OptimizeOptions{GroupBytes: 1}); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if got := len(canonicalRows(t, tb, latest(t, tb))); got != written {
		t.Fatalf("rows: %d, written %d", got, written)
	}
}

// A concurrent delete of a file one group compacts fails that group only; its new files are
// deleted and the other groups commit.
func TestOptimizeConcurrentDeleteFailsOneGroup(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	for _, r := range rowsN(12, 3, "e") {
		appendRows(t, tb, []row{r})
	}
	var victim *txlog.Add
	var doomed []string
	calls := 0
	testHookBeforeCommit = func(bins []*bin) {
		calls++
		if calls != 1 {
			return
		}
		victim = bins[0].files[0]
		for _, a := range bins[0].adds {
			doomed = append(doomed, a.Path)
		}
		txn := tb.Log().NewTransaction(latest(t, tb), &txlog.TxnOptions{Operation: "DELETE"})
		txn.AddActions(txlog.Action{Remove: &txlog.Remove{Path: victim.Path, DataChange: true, PartitionValues: victim.PartitionValues}})
		if _, err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { testHookBeforeCommit = nil }()
	res, err := Optimize(ctx, tb, &OptimizeOptions{GroupBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bins != 3 || len(res.Versions) != 2 || res.BinsDropped != 1 || len(res.Conflicts) != 1 {
		t.Fatalf("result: %+v", res)
	}
	var ce *txlog.ConflictError
	if !errors.As(res.Conflicts[0], &ce) || ce.Kind != txlog.ConflictDeleteDelete {
		t.Fatalf("conflict: %v", res.Conflicts[0])
	}
	for _, p := range doomed {
		if ok, _ := tb.Bucket().Exists(ctx, p); ok {
			t.Errorf("file %s of the failed group was left behind", p)
		}
	}
	snap := latest(t, tb)
	if got := len(canonicalRows(t, tb, snap)); got != 11 {
		t.Fatalf("rows: %d, want 11", got)
	}
	counts := filesPerPartition(snap)
	if counts[partKey(victim.PartitionValues)] != 3 {
		t.Fatalf("the failed group's partition should keep its 3 remaining files: %v", counts)
	}
}

// Z-order by item_id: a point lookup reads at most a quarter of the files it reads when the
// same rows are only bin-packed.
func TestZOrderPointLookupReadsFewerFiles(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	var batches [][]row
	for b := 0; b < 16; b++ {
		var rows []row
		for i := 0; i < 250; i++ {
			rows = append(rows, row{id: fmt.Sprintf("e%d-%d", b, i), user: fmt.Sprintf("u%d", r.IntN(300)), item: fmt.Sprintf("item%04d", r.IntN(2000)), day: 0})
		}
		batches = append(batches, rows)
	}
	lookups := func(zorder []string) (files int64, numFiles int) {
		tb := newTable(t, memURI(), nil)
		for _, rows := range batches {
			appendRows(t, tb, rows)
		}
		var in int64
		for _, a := range latest(t, tb).Files() {
			in += a.Size
		}
		res, err := Optimize(ctx, tb, &OptimizeOptions{ZOrderBy: zorder, TargetSize: in / 24, MinFileSize: in})
		if err != nil {
			t.Fatal(err)
		}
		snap := latest(t, tb)
		if (zorder != nil && len(res.Versions) != 1) || snap.NumFiles() < 8 {
			t.Fatalf("zorder %v: %+v, %d files", zorder, res, snap.NumFiles())
		}
		for i := 0; i < 20; i++ {
			f, _ := reader.ParseFilter(fmt.Sprintf("item_id = item%04d", r.IntN(2000)))
			sc, err := reader.NewScan(ctx, tb, snap, &reader.ScanOptions{Filters: []reader.Filter{f}})
			if err != nil {
				t.Fatal(err)
			}
			for _, err := range sc.Records(ctx) {
				if err != nil {
					t.Fatal(err)
				}
			}
			files += sc.Metrics().FilesRead
		}
		return files, snap.NumFiles()
	}
	plain, nPlain := lookups(nil)
	z, nZ := lookups([]string{"item_id"})
	t.Logf("20 lookups read %d files of %d bin-packed, %d files of %d Z-ordered", plain, nPlain, z, nZ)
	if z*4 > plain {
		t.Fatalf("Z-order lookups read %d files, bin-packed %d: want at most a quarter", z, plain)
	}
}

func TestZOrderTwoColumnsKeepsRows(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	for b := 0; b < 5; b++ {
		appendRows(t, tb, rowsN(50, 2, fmt.Sprintf("b%d-", b)))
	}
	want := canonicalRows(t, tb, latest(t, tb))
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	res, err := Optimize(ctx, tb, &OptimizeOptions{ZOrderBy: []string{"item_id", "user_id"}, Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	if res.FilesRemoved != 10 || res.Rows != 250 {
		t.Fatalf("result: %+v", res)
	}
	if got := canonicalRows(t, tb, latest(t, tb)); !slices.Equal(got, want) {
		t.Fatal("rows changed")
	}
}

// Column mapping by name: the rewritten files use the physical names, and read back the same.
func TestOptimizeColumnMapping(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), map[string]string{"delta.columnMapping.mode": "name"})
	for b := 0; b < 4; b++ {
		appendRows(t, tb, rowsN(6, 2, fmt.Sprint(b)))
	}
	want := canonicalRows(t, tb, latest(t, tb))
	res, err := Optimize(ctx, tb, &OptimizeOptions{ZOrderBy: []string{"item_id"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesRemoved != 8 || res.FilesAdded != 2 {
		t.Fatalf("result: %+v", res)
	}
	if got := canonicalRows(t, tb, latest(t, tb)); !slices.Equal(got, want) {
		t.Fatal("rows changed")
	}
}

// A metadata change between the read and a group's commit stops optimize.
func TestOptimizeStopsOnMetadataChange(t *testing.T) {
	ctx := context.Background()
	tb := newTable(t, memURI(), nil)
	for _, r := range rowsN(6, 2, "e") {
		appendRows(t, tb, []row{r})
	}
	snap := latest(t, tb)
	md := snap.Metadata()
	md.Configuration = map[string]string{"delta.checkpointInterval": "7"}
	txn := tb.Log().NewTransaction(snap, &txlog.TxnOptions{Operation: "SET TBLPROPERTIES"})
	txn.SetMetadata(md)
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := Optimize(ctx, tb, &OptimizeOptions{Snapshot: snap})
	var ce *txlog.ConflictError
	if !errors.As(err, &ce) || ce.Kind != txlog.ConflictMetadataChanged {
		t.Fatalf("optimize across a metadata change: %v", err)
	}
	if n := latest(t, tb).NumFiles(); n != 6 {
		t.Fatalf("files: %d", n)
	}
}
