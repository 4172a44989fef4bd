package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer"
)

// runBenchWrite generates interaction rows in Arrow batches and writes them to a new or existing
// interaction table in one commit. It prints one JSON line: rows, files, bytes, seconds (time in
// the writer only, not in generating the rows), rows_per_second and the process's peak RSS.
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
	rng := rand.New(rand.NewPCG(7, 11))
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	w, err := writer.New(ctx, t, nil)
	if err != nil {
		return err
	}
	progress := newProgress(e.stderr)
	var inWriter time.Duration
	for done := 0; done < *rows; done += *batch {
		rec, err := demoBatch(rng, "bench", min(*batch, *rows-done), start, *days)
		if err != nil {
			return err
		}
		began := time.Now()
		err = w.Write(ctx, rec)
		inWriter += time.Since(began)
		rec.Release()
		if err != nil {
			_ = w.Abort(ctx)
			return err
		}
		progress.update(int64(done), 0)
	}
	began := time.Now()
	res, err := w.Close(ctx)
	inWriter += time.Since(began)
	if err != nil {
		return err
	}
	progress.done()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	secs := inWriter.Seconds()
	b, _ := json.Marshal(map[string]any{"rows": res.Rows, "files": len(res.Added), "bytes": res.Bytes, "seconds": secs,
		"rows_per_second": float64(res.Rows) / secs, "version": res.Version, "max_rss_mib": ru.Maxrss / 1024})
	fmt.Fprintln(e.stdout, string(b))
	return nil
}
