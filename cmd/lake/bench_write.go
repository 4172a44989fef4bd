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
// from the first batch to Close), rows_per_second, the process's peak RSS and, with --pregenerate,
// the MiB of input batches held in memory. Without --pregenerate, rows are generated on their own
// goroutine a few batches ahead of the writer, within the clock (the rate is then a lower bound of
// the writer's own, and the RSS is the writer's); with it, every batch is generated before the
// clock starts, as a database's COPY reads a table already in memory.
func runBenchWrite(ctx context.Context, e *env, args []string) error {
	fs := newFlags("bench write", "URI [--rows N] [--days D] [--batch-rows B] [--pregenerate]", e)
	rows := fs.Int("rows", 1_000_000, "rows to write")
	days := fs.Int("days", 30, "days the rows spread over (event_date partitions)")
	batch := fs.Int("batch-rows", 65536, "rows per Arrow batch")
	pregen := fs.Bool("pregenerate", false, "generate every batch before the clock starts (holds them all in memory)")
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
	first := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	generate := func(done int) (arrow.RecordBatch, error) {
		return demoBatch(rng, "bench", min(*batch, *rows-done), first, *days)
	}
	var held []arrow.RecordBatch
	defer func() {
		for _, r := range held {
			if r != nil {
				r.Release()
			}
		}
	}()
	var inputBytes int64
	if *pregen {
		for done := 0; done < *rows; done += *batch {
			rec, err := generate(done)
			if err != nil {
				return err
			}
			held = append(held, rec)
			for _, c := range rec.Columns() {
				inputBytes += int64(c.Data().SizeInBytes())
			}
		}
	}
	w, err := writer.New(ctx, t, nil)
	if err != nil {
		return err
	}
	gctx, cancel := context.WithCancel(ctx)
	type batchOrErr struct {
		rec arrow.RecordBatch
		err error
	}
	batches := make(chan batchOrErr, 2)
	go func() {
		defer close(batches)
		for i, done := 0, 0; done < *rows; i, done = i+1, done+*batch {
			var b batchOrErr
			if *pregen {
				b.rec, held[i] = held[i], nil
			} else {
				b.rec, b.err = generate(done)
			}
			select {
			case batches <- b:
				if b.err != nil {
					return
				}
			case <-gctx.Done():
				if b.rec != nil {
					b.rec.Release()
				}
				return
			}
		}
	}()
	// On an early return, stop the generator and wait for it before held is released.
	defer func() {
		cancel()
		for b := range batches {
			if b.rec != nil {
				b.rec.Release()
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
	out := map[string]any{"rows": res.Rows, "files": len(res.Added), "bytes": res.Bytes, "seconds": secs,
		"rows_per_second": float64(res.Rows) / secs, "version": res.Version, "max_rss_mib": ru.Maxrss / 1024}
	if *pregen {
		out["input_mib"] = inputBytes >> 20
	}
	b, _ := json.Marshal(out)
	fmt.Fprintln(e.stdout, string(b))
	return nil
}
