package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkWriteScanVsDuckDB writes N interaction rows (default 10,000,000; LAKE_BENCH_ROWS
// overrides) into a partitioned lake table with `lake bench write` (from batches generated
// beforehand, and again streaming for the peak RSS), scans them back with
// `lake bench scan`, and in the same run has DuckDB write the same rows to Parquet (COPY) and
// scan that file. Run:
//
//	cd integration && go test -run '^$' -bench WriteScanVsDuckDB -benchtime 1x -timeout 30m
func BenchmarkWriteScanVsDuckDB(b *testing.B) {
	rows := 10_000_000
	if s := os.Getenv("LAKE_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	bin := lake(b)
	for b.Loop() {
		dir := filepath.Join(b.TempDir(), "events")
		var w, ws, s map[string]float64
		// Speed from batches already in memory, as DuckDB's COPY reads a table in memory; peak
		// RSS from a second, streaming write (rows generated while writing), which holds only
		// the writer's memory.
		mustJSON(b, runBin(b, bin, "bench", "write", dir, "--rows", strconv.Itoa(rows), "--pregenerate"), &w)
		mustJSON(b, runBin(b, bin, "bench", "write", filepath.Join(b.TempDir(), "streamed"), "--rows", strconv.Itoa(rows)), &ws)
		mustJSON(b, runBin(b, bin, "bench", "scan", dir), &s)
		if int(s["rows"]) != rows || int(w["rows"]) != rows || int(ws["rows"]) != rows {
			b.Fatalf("wrote %v and %v, scanned %v rows; want %d", w["rows"], ws["rows"], s["rows"], rows)
		}

		db := openDuck(b)
		files := strings.Fields(runBin(b, bin, "files", dir))
		var paths []string
		for _, f := range files {
			paths = append(paths, "'"+filepath.Join(dir, f)+"'")
		}
		// The same rows, loaded untimed into DuckDB's memory.
		if _, err := db.Exec(fmt.Sprintf("CREATE TABLE ev AS SELECT * FROM read_parquet([%s], hive_partitioning=true)", strings.Join(paths, ","))); err != nil {
			b.Fatal(err)
		}
		out := filepath.Join(b.TempDir(), "duck.parquet")
		start := time.Now()
		if _, err := db.Exec(fmt.Sprintf("COPY ev TO '%s' (FORMAT parquet, COMPRESSION zstd)", out)); err != nil {
			b.Fatal(err)
		}
		duckWrite := time.Since(start).Seconds()
		start = time.Now()
		var n int64
		var a, c, d, e, f, g, h, m float64
		// Every column, as lake's scan reads every column (properties included).
		if err := db.QueryRow(fmt.Sprintf(`SELECT count(*), sum(length(event_id)), sum(length(user_id)), sum(length(item_id)),
			sum(length(interaction_type)), sum(epoch_us(timestamp)) / 1e6, sum(length(source)), sum(value),
			sum(cardinality(properties))
			FROM read_parquet('%s')`, out)).Scan(&n, &a, &c, &d, &e, &f, &g, &h, &m); err != nil {
			b.Fatal(err)
		}
		duckScan := time.Since(start).Seconds()
		if n != int64(rows) {
			b.Fatalf("duckdb scanned %d rows", n)
		}
		b.ReportMetric(w["rows_per_second"], "lake-write-rows/s")
		b.ReportMetric(float64(rows)/duckWrite, "duckdb-write-rows/s")
		b.ReportMetric(float64(rows)/s["seconds"], "lake-scan-rows/s")
		b.ReportMetric(float64(rows)/duckScan, "duckdb-scan-rows/s")
		b.ReportMetric(ws["rows_per_second"], "lake-streaming-write-rows/s")
		b.ReportMetric(ws["max_rss_mib"], "lake-streaming-write-maxRSS-MiB")
	}
}

func mustJSON(b *testing.B, s string, v any) {
	if err := json.Unmarshal([]byte(strings.TrimSpace(s)), v); err != nil {
		b.Fatalf("%q: %v", s, err)
	}
}

func runBin(b *testing.B, bin string, args ...string) string {
	out, errOut, err := runCmd(context.Background(), bin, args...)
	if err != nil {
		b.Fatalf("lake %v: %v\n%s", args, err, errOut)
	}
	return out
}
