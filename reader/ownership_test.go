package reader_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/reader"
)

// checkGoroutines fails when goroutines started by the test are still running shortly after.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines left running (had %d)", n, before)
	}
}

// The iterator owns the records it yields: the caller retains what it keeps, and every byte
// is freed whether the loop runs to the end, breaks early, hits the limit, fails, or is
// cancelled.
func TestRecordOwnership(t *testing.T) {
	dir := t.TempDir()
	makeEvents(t, dir, 12, 500, 100)
	tbl, snap := openLatest(t, dir)
	ctx := context.Background()

	newScan := func(t *testing.T, mem memory.Allocator, o reader.ScanOptions) *reader.Scan {
		o.Allocator = mem
		if o.BatchSize == 0 {
			o.BatchSize = 64
		}
		sc, err := reader.NewScan(ctx, tbl, snap, &o)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}

	t.Run("retain", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		defer mem.AssertSize(t, 0)
		sc := newScan(t, mem, reader.ScanOptions{Concurrency: 4})
		var kept []arrow.RecordBatch
		rows := int64(0)
		for rec, err := range sc.Records(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			rec.Retain()
			kept = append(kept, rec)
			rows += rec.NumRows()
		}
		if rows != 12*500+10 {
			t.Fatalf("%d rows", rows)
		}
		// Kept records are intact after the loop.
		if kept[0].Column(0).Len() != int(kept[0].NumRows()) {
			t.Fatal("kept record damaged")
		}
		if mem.CurrentAlloc() == 0 {
			t.Fatal("retained records hold no memory?")
		}
		for _, r := range kept {
			r.Release()
		}
		// A Scan can be iterated again.
		n := 0
		for _, err := range sc.Records(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != len(kept) {
			t.Fatalf("second iteration: %d batches, first %d", n, len(kept))
		}
	})

	t.Run("break", func(t *testing.T) {
		before := runtime.NumGoroutine()
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		sc := newScan(t, mem, reader.ScanOptions{Concurrency: 4})
		n := 0
		for _, err := range sc.Records(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if n == 3 {
				break
			}
		}
		mem.AssertSize(t, 0)
		checkGoroutines(t, before)
	})

	t.Run("limit", func(t *testing.T) {
		for _, limit := range []int64{1, 63, 64, 65, 1000, 100000} {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			sc := newScan(t, mem, reader.ScanOptions{Limit: limit, Concurrency: 3})
			rows := int64(0)
			for rec, err := range sc.Records(ctx) {
				if err != nil {
					t.Fatal(err)
				}
				rows += rec.NumRows()
			}
			if want := min(limit, 12*500+10); rows != want || sc.Metrics().RowsReturned != want {
				t.Errorf("limit %d: %d rows", limit, rows)
			}
			mem.AssertSize(t, 0)
		}
	})

	t.Run("error", func(t *testing.T) {
		dir := t.TempDir()
		makeEvents(t, dir, 12, 500, 100)
		os.Remove(filepath.Join(dir, "event_date=2024-01-07", "part-00006.parquet"))
		tbl, snap := openLatest(t, dir)
		before := runtime.NumGoroutine()
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		sc, err := reader.NewScan(ctx, tbl, snap, &reader.ScanOptions{Allocator: mem, BatchSize: 64, Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		rows, errs := int64(0), 0
		var last error
		for rec, err := range sc.Records(ctx) {
			if err != nil {
				errs++
				last = err
				continue
			}
			rows += rec.NumRows()
		}
		var fe *reader.FileError
		if errs != 1 || !errors.As(last, &fe) || fe.Path != "event_date=2024-01-07/part-00006.parquet" {
			t.Fatalf("%d errors, last %v", errs, last)
		}
		// Files are yielded in order: the six before the missing one are complete.
		if rows != 6*500 {
			t.Errorf("%d rows before the error, want %d", rows, 6*500)
		}
		mem.AssertSize(t, 0)
		checkGoroutines(t, before)
	})

	t.Run("cancel", func(t *testing.T) {
		before := runtime.NumGoroutine()
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		sc := newScan(t, mem, reader.ScanOptions{Concurrency: 2})
		cctx, cancel := context.WithCancel(ctx)
		var last error
		n := 0
		for _, err := range sc.Records(cctx) {
			if err != nil {
				last = err
				break
			}
			n++
			if n == 2 {
				cancel()
			}
		}
		cancel()
		if !errors.Is(last, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", last)
		}
		mem.AssertSize(t, 0)
		checkGoroutines(t, before)
	})
}
