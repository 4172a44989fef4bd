package compaction

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// benchTable writes rows interaction rows over 10 days into a local table as commits
// single-commit appends, and returns the table and its bytes.
func benchTable(b *testing.B, rows, commits int) (*table.Table, int64) {
	ctx := context.Background()
	dir := b.TempDir()
	tb := newTable(b, dir, map[string]string{"delta.checkpointInterval": "100"})
	r := rand.New(rand.NewPCG(7, 7))
	per := rows / commits
	for c := 0; c < commits; c++ {
		rs := make([]row, per)
		for i := range rs {
			rs[i] = row{id: fmt.Sprintf("e%d-%d", c, i), user: fmt.Sprintf("u%d", r.IntN(100000)), item: fmt.Sprintf("item%05d", r.IntN(20000)), day: r.IntN(10)}
		}
		w, err := writer.New(ctx, tb, nil)
		if err != nil {
			b.Fatal(err)
		}
		rec := record(memory.DefaultAllocator, rs)
		if err := w.Write(ctx, rec); err != nil {
			b.Fatal(err)
		}
		rec.Release()
		if _, err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var n int64
	for _, a := range latest(b, tb).Files() {
		n += a.Size
	}
	return tb, n
}

// BenchmarkOptimize compacts a table of LAKE_BENCH_ROWS rows (default 200k) written in
// LAKE_BENCH_COMMITS appends (default 200, 10 partitions each) and reports the input MiB/s and
// rows/s; with LAKE_BENCH_ZORDER=1 it clusters by item_id.
//
//	go test ./compaction -run '^$' -bench Optimize -benchtime 1x
func BenchmarkOptimize(b *testing.B) {
	rows := envInt("LAKE_BENCH_ROWS", 200_000)
	commits := envInt("LAKE_BENCH_COMMITS", 200)
	var z []string
	if os.Getenv("LAKE_BENCH_ZORDER") == "1" {
		z = []string{"item_id"}
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tb, in := benchTable(b, rows, commits)
		files := latest(b, tb).NumFiles()
		b.StartTimer()
		start := time.Now()
		res, err := Optimize(context.Background(), tb, &OptimizeOptions{ZOrderBy: z, TargetSize: int64(envInt("LAKE_BENCH_TARGET", 0))})
		if err != nil {
			b.Fatal(err)
		}
		secs := time.Since(start).Seconds()
		b.StopTimer()
		b.ReportMetric(float64(in)/(1<<20)/secs, "MiB/s")
		b.ReportMetric(float64(res.Rows)/secs, "rows/s")
		b.Logf("%d rows, %d files (%.1f MiB) -> %d files (%.1f MiB) in %.2f s", res.Rows, files, float64(in)/(1<<20), latest(b, tb).NumFiles(), float64(res.BytesAdded)/(1<<20), secs)
		// Point lookups on item_id: files read per lookup.
		var read int64
		const lookups = 20
		for l := 0; l < lookups; l++ {
			f, _ := reader.ParseFilter(fmt.Sprintf("item_id = item%05d", (l*997)%20000))
			sc, err := reader.NewScan(context.Background(), tb, latest(b, tb), &reader.ScanOptions{Columns: []string{"event_id"}, Filters: []reader.Filter{f}})
			if err != nil {
				b.Fatal(err)
			}
			for _, err := range sc.Records(context.Background()) {
				if err != nil {
					b.Fatal(err)
				}
			}
			read += sc.Metrics().FilesRead
		}
		b.ReportMetric(float64(read)/lookups, "files/lookup")
		b.StartTimer()
	}
}

// BenchmarkVacuumListing lists a local table holding LAKE_BENCH_FILES data files (default
// 20,000; all young, so nothing is deleted) and reports files listed per second.
func BenchmarkVacuumListing(b *testing.B) {
	n := envInt("LAKE_BENCH_FILES", 20_000)
	dir := b.TempDir()
	tb := newTable(b, dir, nil)
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("event_date=2024-01-%02d", 1+i%28), fmt.Sprintf("part-%06d.parquet", i))
		if i < 28 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Vacuum(context.Background(), tb, &VacuumOptions{DryRun: true})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(res.FilesListed)/res.ListSeconds, "files/s")
	}
}
