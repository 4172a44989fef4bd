package reader_test

import (
	"context"
	"testing"

	"github.com/lakehouse/lake/reader"
)

// BenchmarkScan scans a local table of 10 daily files × 30,000 rows (300,010 rows; user_id
// string, n long, value double, ts timestamp, event_date partition) and reports rows/s.
func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	makeEvents(b, dir, 10, 30000, 10000)
	tbl, snap := openLatest(b, dir)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		opts reader.ScanOptions
	}{
		{"all-columns", reader.ScanOptions{}},
		{"one-column", reader.ScanOptions{Columns: []string{"n"}}},
		{"filter-exact", reader.ScanOptions{Filters: mustFilters(b, "value >= 100")}},
		{"filter-stats", reader.ScanOptions{Filters: mustFilters(b, "n >= 270000")}},
		{"partition", reader.ScanOptions{Filters: mustFilters(b, "event_date = 2024-01-03")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var rows, bytes int64
			for b.Loop() {
				o := bc.opts
				sc, err := reader.NewScan(ctx, tbl, snap, &o)
				if err != nil {
					b.Fatal(err)
				}
				for rec, err := range sc.Records(ctx) {
					if err != nil {
						b.Fatal(err)
					}
					rows += rec.NumRows()
				}
				bytes += sc.Metrics().BytesRead
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(bytes)/float64(b.N), "read-bytes/op")
		})
	}
}
