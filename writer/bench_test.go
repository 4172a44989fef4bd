package writer_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer"
)

// BenchmarkWriteInteractions writes 1,000,000 interaction rows (30 days, so 30 partitions, in
// random order) in 64k-row batches into a local table, and reports rows/s and the peak heap
// above what the input batches hold.
//
//	go test ./writer/ -run '^$' -bench BenchmarkWriteInteractions -benchtime 1x
func BenchmarkWriteInteractions(b *testing.B) {
	const rows, batch = 1_000_000, 64 << 10
	r := rand.New(rand.NewPCG(42, 42))
	var recs []arrow.RecordBatch
	for i := 0; i < rows; i += batch {
		recs = append(recs, interactionRecord(memory.DefaultAllocator, genInteractions(r, min(batch, rows-i), 30)))
	}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	ctx := context.Background()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peak.Load() {
					peak.Store(m.HeapAlloc)
				}
			}
		}
	}()

	var files int
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tb, err := table.Create(ctx, filepath.Join(b.TempDir(), "events"), table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{"event_date"}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		w, err := writer.New(ctx, tb, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, rec := range recs {
			if err := w.Write(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
		res, err := w.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		files, bytes = len(res.Added), res.Bytes
		tb.Close()
		b.StartTimer()
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(peak.Load()-min(base, peak.Load()))/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(files), "files")
	b.ReportMetric(float64(bytes)/(1<<20), "MiB-written")
}
