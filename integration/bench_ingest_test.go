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
// Parquet with the same standardisation: the same nine columns, with renamed types, epoch ms to
// timestamps, the UTC date, the source, and an event_id hashed from the fields (DuckDB's md5 in
// hex where lake uses xxh3-128 in hex: both 32 characters).
// Run:
//
//	cd integration && go test -run '^$' -bench IngestCSVVsDuckDB -benchtime 1x -timeout 30m
func BenchmarkIngestCSVVsDuckDB(b *testing.B) {
	rows := 5_000_000
	if s := os.Getenv("LAKE_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	// LAKE_BENCH_DUCK_ID picks DuckDB's event_id: md5 (default: 128 bits in hex, as lake's), hash
	// (its 64-bit hash in hex), or none (no event_id column work: a constant).
	duckID := "md5(concat_ws(chr(0), uid, product, interaction_type, epoch_us(timestamp)))"
	switch os.Getenv("LAKE_BENCH_DUCK_ID") {
	case "hash":
		duckID = "printf('%016x', hash(uid, product, interaction_type, epoch_us(timestamp)))"
	case "none":
		duckID = "''"
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
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		rss := float64(ru.Maxrss) / 1024
		lakeCPU := cpuSeconds(ru)

		db := openDuck(b)
		outDir := filepath.Join(b.TempDir(), "duck")
		var before, after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		start = time.Now()
		_, err = db.ExecContext(context.Background(), fmt.Sprintf(`COPY (
			SELECT %s AS event_id,
				user_id, item_id, interaction_type, timestamp, event_date, 'retail.csv' AS source,
				NULL::DOUBLE AS value, NULL::MAP(VARCHAR, VARCHAR) AS properties
			FROM (SELECT uid, product, uid AS user_id, product AS item_id,
				CASE action WHEN 'pv' THEN 'view' WHEN 'atc' THEN 'add_to_cart' WHEN 'buy' THEN 'purchase' ELSE action END AS interaction_type,
				epoch_ms(ts) AS timestamp, CAST(epoch_ms(ts) AS DATE) AS event_date
			FROM read_csv('%s', header = true, columns = {'uid': 'VARCHAR', 'product': 'VARCHAR', 'action': 'VARCHAR', 'ts': 'BIGINT'}))
		) TO '%s' (FORMAT parquet, PARTITION_BY (event_date), COMPRESSION zstd)`, duckID, csv, outDir))
		duckSec := time.Since(start).Seconds()
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
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
		// CPU seconds per million rows: steadier than rows/s on a machine that is doing other work.
		b.ReportMetric(lakeCPU/float64(rows)*1e6, "lake-cpu-s/Mrows")
		b.ReportMetric((cpuSeconds(&after)-cpuSeconds(&before))/float64(rows)*1e6, "duckdb-cpu-s/Mrows")
	}
}

func cpuSeconds(ru *syscall.Rusage) float64 {
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
