package integration

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// writeRetailCSV writes rows of a retail export (uid,product,action,ts in epoch ms) over 30 days.
func writeRetailCSV(tb testing.TB, path string, rows int) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	acts := []string{"pv", "pv", "pv", "pv", "pv", "pv", "pv", "pv", "atc", "buy"}
	base := int64(1709251200000)
	w.WriteString("uid,product,action,ts\n")
	for range rows {
		fmt.Fprintf(w, "u%d,p%d,%s,%d\n", rng.IntN(100000), rng.IntN(20000), acts[rng.IntN(10)], base+rng.Int64N(30*86400000))
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}

// BenchmarkIngestCSVVsDuckDB ingests a retail CSV export (default 5,000,000 rows;
// LAKE_BENCH_ROWS overrides) through --map and --timestamp-format epoch_ms into a table
// partitioned by day, and in the same run has DuckDB read the same CSV into day-partitioned zstd
// Parquet with the same standardisation (renamed types, epoch ms to timestamps, the UTC date).
// Run:
//
//	cd integration && go test -run '^$' -bench IngestCSVVsDuckDB -benchtime 1x -timeout 30m
func BenchmarkIngestCSVVsDuckDB(b *testing.B) {
	rows := 5_000_000
	if s := os.Getenv("LAKE_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	bin := lake(b)
	csv := filepath.Join(b.TempDir(), "retail.csv")
	writeRetailCSV(b, csv, rows)
	for b.Loop() {
		dir := filepath.Join(b.TempDir(), "events")
		runBin(b, bin, "create", dir, "--schema", "interactions")
		cmd := exec.Command(bin, "ingest", dir, csv, "--map", "user_id=uid,item_id=product,interaction_type=action,timestamp=ts",
			"--types", "pv=view,atc=add_to_cart,buy=purchase", "--timestamp-format", "epoch_ms", "--json")
		start := time.Now()
		out, err := cmd.Output()
		lakeSec := time.Since(start).Seconds()
		if err != nil {
			b.Fatalf("lake ingest: %v %s", err, out)
		}
		var c map[string]float64
		mustJSON(b, string(out), &c)
		if int(c["rows_written"]) != rows {
			b.Fatalf("lake wrote %v rows, want %d", c["rows_written"], rows)
		}
		rss := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024

		db := openDuck(b)
		outDir := filepath.Join(b.TempDir(), "duck")
		start = time.Now()
		_, err = db.ExecContext(context.Background(), fmt.Sprintf(`COPY (
			SELECT uid AS user_id, product AS item_id,
				CASE action WHEN 'pv' THEN 'view' WHEN 'atc' THEN 'add_to_cart' WHEN 'buy' THEN 'purchase' ELSE action END AS interaction_type,
				epoch_ms(ts) AS timestamp, CAST(epoch_ms(ts) AS DATE) AS event_date
			FROM read_csv('%s', header = true, columns = {'uid': 'VARCHAR', 'product': 'VARCHAR', 'action': 'VARCHAR', 'ts': 'BIGINT'})
		) TO '%s' (FORMAT parquet, PARTITION_BY (event_date), COMPRESSION zstd)`, csv, outDir))
		duckSec := time.Since(start).Seconds()
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/*/*.parquet')", outDir)).Scan(&n); err != nil || n != int64(rows) {
			b.Fatalf("duckdb wrote %d rows: %v", n, err)
		}
		b.ReportMetric(float64(rows)/lakeSec, "lake-rows/s")
		b.ReportMetric(float64(rows)/duckSec, "duckdb-rows/s")
		b.ReportMetric(duckSec/lakeSec, "lake/duckdb")
		b.ReportMetric(rss, "lake-maxRSS-MiB")
	}
}
