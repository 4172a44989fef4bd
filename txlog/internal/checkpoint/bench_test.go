package checkpoint

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/delta"
)

// pqBenchActions returns a realistic checkpoint of n adds (plus protocol, metadata, a txn and
// n/1000 removes): 365 daily partitions, Spark-style part file names and JSON stats over 9
// columns.
func pqBenchActions(n int) []delta.Action {
	rng := rand.New(rand.NewPCG(1, 2))
	acts := make([]delta.Action, 0, n+n/1000+3)
	acts = append(acts,
		delta.Action{Protocol: &delta.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		delta.Action{Metadata: &delta.Metadata{
			ID: "5fba94ed-9794-4965-ba6e-6ee3c0d22af9", Format: delta.Format{Provider: "parquet", Options: map[string]string{}},
			SchemaString:     `{"type":"struct","fields":[]}`,
			PartitionColumns: []string{"event_date"}, Configuration: map[string]string{"delta.checkpointInterval": "100"},
		}},
		delta.Action{Txn: &delta.Txn{AppID: "stream-1", Version: 42}},
	)
	day0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	countries := []string{"DE", "FR", "US", "BR", "JP", "IN", "NG", "AU"}
	u := uuid.New()
	for i := 0; i < n; i++ {
		day := day0.AddDate(0, 0, i%365)
		date := day.Format("2006-01-02")
		u[0], u[1], u[2], u[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		path := fmt.Sprintf("event_date=%s/part-%05d-%s.c000.snappy.parquet", date, i%200, u.String())
		recs := 1000 + rng.IntN(100000)
		idMin := int64(i) * 100000
		ts := day.Add(time.Duration(rng.IntN(86400)) * time.Second)
		stats := fmt.Sprintf(`{"numRecords":%d,"minValues":{"id":%d,"user_id":%d,"amount":%.2f,"country":"%s","device":"android","ts":"%s","score":%d,"name":"a%06d","flag":false},`+
			`"maxValues":{"id":%d,"user_id":%d,"amount":%.2f,"country":"%s","device":"web","ts":"%s","score":%d,"name":"z%06d","flag":true},`+
			`"nullCount":{"id":0,"user_id":%d,"amount":%d,"country":0,"device":%d,"ts":0,"score":0,"name":%d,"flag":0}}`,
			recs, idMin, rng.IntN(1000000), rng.Float64()*10, countries[rng.IntN(len(countries))], ts.Format("2006-01-02T15:04:05.000Z07:00"), rng.IntN(50), rng.IntN(999999),
			idMin+int64(recs), 1000000+rng.IntN(1000000), 10+rng.Float64()*1000, countries[rng.IntN(len(countries))], ts.Add(time.Hour).Format("2006-01-02T15:04:05.000Z07:00"), 50+rng.IntN(50), rng.IntN(999999),
			rng.IntN(10), rng.IntN(3), rng.IntN(100), rng.IntN(5))
		acts = append(acts, delta.Action{Add: &delta.Add{
			Path:             path,
			PartitionValues:  map[string]*string{"event_date": &date},
			Size:             int64(100000 + rng.IntN(10000000)),
			ModificationTime: day.UnixMilli() + int64(i%1000),
			DataChange:       false,
			Stats:            stats,
		}})
		if i%1000 == 0 {
			ts := day.UnixMilli()
			sz := int64(12345)
			acts = append(acts, delta.Action{Remove: &delta.Remove{Path: "old/" + path, DeletionTimestamp: &ts, Size: &sz,
				PartitionValues: map[string]*string{"event_date": &date}}})
		}
	}
	return acts
}

var pqBenchOnce struct {
	sync.Mutex
	path string
	dir  string
}

// pqBenchFile writes the 1M-add checkpoint once per process, in a temporary folder removed when
// the benchmark that created it ends (a later benchmark run writes it again).
func pqBenchFile(b *testing.B, n int) string {
	pqBenchOnce.Lock()
	defer pqBenchOnce.Unlock()
	if pqBenchOnce.path != "" {
		if _, err := os.Stat(pqBenchOnce.path); err == nil {
			return pqBenchOnce.path
		}
	}
	dir := b.TempDir()
	p := filepath.Join(dir, "00000000000000000100.checkpoint.parquet")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := Encode(w, pqBenchActions(n)); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	pqBenchOnce.path, pqBenchOnce.dir = p, dir
	return p
}

// pqPeak samples the heap while a benchmark runs and reads the process's peak RSS.
type pqPeak struct {
	stop     chan struct{}
	done     chan struct{}
	heapPeak atomic.Uint64
}

func startPQPeak() *pqPeak {
	runtime.GC()
	debug.FreeOSMemory()
	// Reset the kernel's peak-RSS mark (VmHWM) so it covers only what follows.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	p := &pqPeak{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var ms runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > p.heapPeak.Load() {
				p.heapPeak.Store(ms.HeapAlloc)
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *pqPeak) report(b *testing.B) {
	close(p.stop)
	<-p.done
	b.ReportMetric(float64(p.heapPeak.Load())/(1<<20), "peak-heap-MiB")
	if rss := pqVmHWM(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	}
}

// pqVmHWM is the process's peak resident set size in bytes (Linux), 0 when unknown.
func pqVmHWM() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// BenchmarkDecodeCheckpoint1M decodes a 1,000,000-add checkpoint and keeps every add, as a
// snapshot load does.
func BenchmarkDecodeCheckpoint1M(b *testing.B) {
	const n = 1_000_000
	p := pqBenchFile(b, n)
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
	b.ReportAllocs()
	peak := startPQPeak()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		adds := make([]*delta.Add, 0, n)
		nRemoves := 0
		err = Decode(f, st.Size(), func(a delta.Action) error {
			switch {
			case a.Add != nil:
				adds = append(adds, a.Add)
			case a.Remove != nil:
				nRemoves++
			}
			return nil
		})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		if len(adds) != n || nRemoves != n/1000 {
			b.Fatalf("decoded %d adds and %d removes, want %d and %d", len(adds), nRemoves, n, n/1000)
		}
		if it == b.N-1 {
			b.StopTimer()
			peak.report(b)
			runtime.KeepAlive(adds)
		}
	}
}

// BenchmarkEncodeCheckpoint1M writes a 1,000,000-add checkpoint (to a file, as a checkpoint
// writer would).
func BenchmarkEncodeCheckpoint1M(b *testing.B) {
	const n = 1_000_000
	acts := pqBenchActions(n)
	dir := b.TempDir()
	b.ReportAllocs()
	peak := startPQPeak()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		f, err := os.Create(filepath.Join(dir, "cp.parquet"))
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		if err := Encode(w, acts); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		st, _ := f.Stat()
		f.Close()
		if it == b.N-1 {
			b.StopTimer()
			b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
			peak.report(b)
		}
	}
	runtime.KeepAlive(acts)
}
