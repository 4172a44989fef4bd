package table_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse/lake/internal/storage/storagetest"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// buildBigTable writes a local table whose log is a 1,000,000-file classic checkpoint at version
// 0 followed by 100 JSON commits of 10 files each. LAKE_BENCH_DIR keeps it for measuring a
// separate `lake describe` process (peak RSS).
func buildBigTable(b *testing.B, files int) string {
	b.Helper()
	dir := os.Getenv("LAKE_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "big")
	}
	if _, err := os.Stat(filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", 100))); err == nil {
		return dir
	}
	os.MkdirAll(filepath.Join(dir, "_delta_log"), 0o755)
	schema := table.InteractionSchema()
	now := time.Now().UnixMilli()
	acts := make([]txlog.Action, 0, files+2)
	acts = append(acts, txlog.Action{Protocol: &txlog.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		txlog.Action{Metadata: &txlog.Metadata{ID: "bench", Format: txlog.Format{Provider: "parquet"}, SchemaString: schema.String(),
			PartitionColumns: []string{"event_date"}, Configuration: map[string]string{"delta.checkpointInterval": "1000"}, CreatedTime: &now}})
	days := make([]string, 365)
	for i := range days {
		days[i] = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i).Format("2006-01-02")
	}
	for i := range files {
		d := days[i%len(days)]
		acts = append(acts, txlog.Action{Add: &txlog.Add{
			Path:            fmt.Sprintf("event_date=%s/part-%05d-6f2c1a7e-%012d.c000.zstd.parquet", d, i%100000, i),
			PartitionValues: map[string]*string{"event_date": &d}, Size: 1 << 20, ModificationTime: now, DataChange: true,
			Stats: fmt.Sprintf(`{"numRecords":%d,"minValues":{"event_id":"e%09d","user_id":"u000001","item_id":"i000001","interaction_type":"add_to_cart","timestamp":"%sT00:00:00.000Z","source":"web","value":0.5},"maxValues":{"event_id":"e%09d","user_id":"u099999","item_id":"i099999","interaction_type":"view","timestamp":"%sT23:59:59.999Z","source":"web","value":999.5},"nullCount":{"event_id":0,"user_id":0,"item_id":0,"interaction_type":0,"timestamp":0,"source":0,"value":10,"properties":3}}`,
				10000+i%1000, i, d, i+9999, d),
		}})
	}
	f, err := os.Create(filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.checkpoint.parquet", 0)))
	if err != nil {
		b.Fatal(err)
	}
	if err := txlog.EncodeCheckpoint(f, acts); err != nil {
		b.Fatal(err)
	}
	f.Close()
	acts = nil
	runtime.GC()
	ctx := context.Background()
	tbl, err := table.Open(ctx, dir, &table.Options{Log: txlog.LogOptions{DisableAutoCheckpoint: true}})
	if err != nil {
		b.Fatal(err)
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for v := 1; v <= 100; v++ {
		txn := tbl.Log().NewTransaction(snap, nil)
		for j := range 10 {
			txn.AddActions(dayFile(days[j], fmt.Sprintf("new-%d-%d.parquet", v, j), `{"numRecords":1}`))
		}
		if _, err := txn.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

func maxRSSMiB() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024
}

// BenchmarkSnapshotLoad1M: go test ./table -run '^$' -bench SnapshotLoad1M -benchtime 3x
func BenchmarkSnapshotLoad1M(b *testing.B) {
	dir := buildBigTable(b, 1_000_000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		tbl, err := table.Open(ctx, dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		snap, err := tbl.Snapshot(ctx)
		if err != nil || snap.NumFiles() != 1_000_000+1000 || snap.Version() != 100 {
			b.Fatalf("snapshot: %v", err)
		}
		tbl.Close()
	}
	b.ReportMetric(maxRSSMiB(), "maxRSS-MiB(process)")
}

// BenchmarkIncrementalUpdate: the latest snapshot after one new commit, reading only that commit.
func BenchmarkIncrementalUpdate(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "t")
	tbl, err := table.Create(ctx, dir, table.InteractionSchema(), &table.CreateOptions{
		PartitionColumns: []string{"event_date"}, Options: table.Options{Log: txlog.LogOptions{DisableAutoCheckpoint: true}}})
	if err != nil {
		b.Fatal(err)
	}
	defer tbl.Close()
	snap, _ := tbl.Snapshot(ctx)
	add := func(i int) {
		txn := tbl.Log().NewTransaction(snap, nil)
		txn.AddActions(dayFile("2024-01-01", fmt.Sprintf("f%d.parquet", i), ""))
		if _, err := txn.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 100 {
		add(i)
	}
	snap, _ = tbl.Snapshot(ctx)
	i := 100
	for b.Loop() {
		b.StopTimer()
		add(i)
		i++
		b.StartTimer()
		next, err := tbl.Update(ctx, snap)
		if err != nil || next.Version() != snap.Version()+1 {
			b.Fatalf("update: %v", err)
		}
		snap = next
	}
}

// BenchmarkCommits: blind-append commits per second with 1 and 8 concurrent writers, on the local
// disk and on S3 (versitygw).
func BenchmarkCommits(b *testing.B) {
	ctx := context.Background()
	for _, be := range storagetest.Backends(b) {
		if be.Name != "local" && be.Name != "s3" {
			continue
		}
		for _, writers := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/writers=%d", be.Name, writers), func(b *testing.B) {
				uri := be.URI(b)
				tbl, err := table.Create(ctx, uri, table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{"event_date"}})
				if err != nil {
					b.Fatal(err)
				}
				tbl.Close()
				var next atomic.Int64
				total := int64(b.N)
				start := time.Now()
				errs := make(chan error, writers)
				for w := range writers {
					go func() {
						t, err := table.Open(ctx, uri, nil)
						if err != nil {
							errs <- err
							return
						}
						defer t.Close()
						snap, _ := t.Snapshot(ctx)
						for {
							i := next.Add(1)
							if i > total {
								errs <- nil
								return
							}
							txn := t.Log().NewTransaction(snap, nil)
							txn.AddActions(dayFile("2024-01-01", fmt.Sprintf("w%d-%d.parquet", w, i), ""))
							if _, err := txn.Commit(ctx); err != nil {
								errs <- err
								return
							}
							if snap, err = t.Update(ctx, snap); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				for range writers {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(total)/time.Since(start).Seconds(), "commits/s")
			})
		}
	}
}
