package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer"
)

// runBenchWrite generates interaction rows in Arrow batches and writes them to a new or existing
// interaction table in one commit. It prints one JSON line: rows, files, bytes, seconds (wall time
// from the first batch to Close, generating the rows included), rows_per_second and the process's
// peak RSS.
func runBenchWrite(ctx context.Context, e *env, args []string) error {
	fs := newFlags("bench write", "URI [--rows N] [--days D] [--batch-rows B]", e)
	rows := fs.Int("rows", 1_000_000, "rows to write")
	days := fs.Int("days", 30, "days the rows spread over (event_date partitions)")
	batch := fs.Int("batch-rows", 65536, "rows per Arrow batch")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *rows <= 0 || *days <= 0 || *batch <= 0 {
		return usagef("--rows, --days and --batch-rows must be positive")
	}
	t, err := table.Open(ctx, pos[0], nil)
	if err != nil {
		t, err = table.Create(ctx, pos[0], table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{"event_date"}})
		if err != nil {
			return err
		}
	}
	defer t.Close()
	w, err := writer.New(ctx, t, nil)
	if err != nil {
		return err
	}
	// Rows are generated on their own goroutine, a few batches ahead of the writer, and the clock
	// runs from the first batch to Close: generating costs CPU the writer competes with, so the
	// rate is a lower bound of the writer's own.
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batchOrErr struct {
		rec arrow.RecordBatch
		err error
	}
	batches := make(chan batchOrErr, 2)
	go func() {
		defer close(batches)
		rng := rand.New(rand.NewPCG(7, 11))
		start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
		for done := 0; done < *rows; done += *batch {
			rec, err := demoBatch(rng, "bench", min(*batch, *rows-done), start, *days)
			select {
			case batches <- batchOrErr{rec, err}:
				if err != nil {
					return
				}
			case <-gctx.Done():
				if rec != nil {
					rec.Release()
				}
				return
			}
		}
	}()
	progress := newProgress(e.stderr)
	began := time.Now()
	done := int64(0)
	for b := range batches {
		if b.err != nil {
			_ = w.Abort(ctx)
			return b.err
		}
		rec := b.rec
		err := w.Write(ctx, rec)
		done += rec.NumRows()
		rec.Release()
		if err != nil {
			_ = w.Abort(ctx)
			return err
		}
		progress.update(done, 0)
	}
	res, err := w.Close(ctx)
	elapsed := time.Since(began)
	if err != nil {
		return err
	}
	progress.done()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	secs := elapsed.Seconds()
	b, _ := json.Marshal(map[string]any{"rows": res.Rows, "files": len(res.Added), "bytes": res.Bytes, "seconds": secs,
		"rows_per_second": float64(res.Rows) / secs, "version": res.Version, "max_rss_mib": ru.Maxrss / 1024})
	fmt.Fprintln(e.stdout, string(b))
	return nil
}
