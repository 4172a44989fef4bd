package trending

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse/lake/jobs"
)

// benchEvents is the size of the benchmarks' generated data: 2M by default, TRENDING_BENCH_N
// for more (20000000 for the figure).
func benchEvents() int {
	if s := os.Getenv("TRENDING_BENCH_N"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 2_000_000
}

func benchDataset(b *testing.B) *jobs.Dataset {
	b.Helper()
	n := benchEvents()
	d, err := jobs.Generate(&jobs.GenOptions{Users: max(20000, n/50), Items: max(6000, n/200), Days: 30, Interactions: n, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkBatch is `lake trending` end to end on a local table: scan, count, model, commit.
//
//	go test ./jobs/trending -run '^$' -bench Batch -benchtime 1x
//	TRENDING_BENCH_N=20000000 go test ./jobs/trending -run '^$' -bench Batch -benchtime 1x -timeout 1h
func BenchmarkBatch(b *testing.B) {
	d := benchDataset(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "events")
	t0 := time.Now()
	writeDataset(b, src, d, 0, len(d.Events))
	b.Logf("wrote %d events in %.1fs", len(d.Events), time.Since(t0).Seconds())
	b.ResetTimer()
	for i := range b.N {
		cpu0 := cpuSeconds()
		res, err := Run(context.Background(), &Options{Source: src, SourceVersion: -1, Output: filepath.Join(dir, "out"+strconv.Itoa(i))})
		if err != nil {
			b.Fatal(err)
		}
		cpu := cpuSeconds() - cpu0
		b.ReportMetric(float64(res.Events)/res.Seconds, "events/s")
		// The machine is shared: events per CPU-second of this process says what the code
		// costs; events/s what the run got.
		b.ReportMetric(float64(res.Events)/cpu, "events/cpu-s")
		b.Logf("%d events, %d items, %d windows, %d flagged in %.2fs", res.Events, res.Items, res.Windows, res.Flagged, res.Seconds)
	}
}

// BenchmarkDetector is the model alone, fed from memory: Add for every event, then Advance.
func BenchmarkDetector(b *testing.B) {
	d := benchDataset(b)
	users := make([]string, d.Options.Users)
	for i := range users {
		users[i] = jobs.UserID(int32(i))
	}
	items := make([]string, d.Options.Items)
	cats := make([]string, d.Options.Items)
	for i := range items {
		items[i] = jobs.ItemID(int32(i))
		cats[i] = jobs.CategoryID(d.ItemCategory[i])
	}
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		det, err := NewDetector(nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range d.Events {
			det.Add(users[e.User], items[e.Item], jobs.GenTypeNames[e.Type], e.Time, cats[e.Item])
		}
		tAdd := time.Since(t0)
		w := det.Advance()
		b.ReportMetric(float64(len(d.Events))/time.Since(t0).Seconds(), "events/s")
		b.Logf("add %.2fs, %d windows closed in %.2fs", tAdd.Seconds(), len(w), time.Since(t0).Seconds()-tAdd.Seconds())
	}
}

// BenchmarkMemoryPerItem measures the heap a tracked item holds once its windows are closed:
// the per-item model state plus its id and index entry.
func BenchmarkMemoryPerItem(b *testing.B) {
	const items = 200_000
	ids := make([]string, items)
	for i := range ids {
		ids[i] = jobs.ItemID(int32(i))
	}
	var before, after runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		det, err := NewDetector(nil)
		if err != nil {
			b.Fatal(err)
		}
		base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
		for i, id := range ids {
			det.Add("u1", id, "view", base+int64(i%3600)*1e6, "c"+strconv.Itoa(i%50))
		}
		det.Add("u1", ids[0], "view", base+2*3600e6, "c0") // closes the first window
		det.Advance()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/items, "bytes/item")
		runtime.KeepAlive(det)
	}
}

// BenchmarkFollowLatency measures, with --follow's default poll of 1s, the time from the commit
// that closes a window to the follower's commit of that window's rows.
//
//	go test ./jobs/trending -run '^$' -bench FollowLatency -benchtime 5x
func BenchmarkFollowLatency(b *testing.B) {
	d, err := jobs.Generate(&jobs.GenOptions{Users: 5000, Items: 2000, Days: 3, Interactions: 200000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	src, out := memURI("events"), memURI("out")
	// Events up to the middle of day 2; then each round appends the next hour.
	day2 := d.Events[0].Time + 36*3600e6
	cut := 0
	for cut < len(d.Events) && d.Events[cut].Time < day2 {
		cut++
	}
	writeDataset(b, src, d, 0, cut)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	closed := make(chan time.Time, 100)
	go Follow(ctx, &FollowOptions{Options: Options{Source: src, SourceVersion: -1, Output: out, Params: Params{Lateness: time.Nanosecond}},
		Poll: time.Second, OnCommit: func(_ int64, ws []Window, _ []OutputResult) { closed <- time.Now() }})
	time.Sleep(1500 * time.Millisecond) // the first scan
	for len(closed) > 0 {
		<-closed
	}
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		next := cut
		for next < len(d.Events) && d.Events[next].Time < d.Events[cut].Time+3600e6 {
			next++
		}
		if next >= len(d.Events) {
			b.Fatal("out of events")
		}
		writeDataset(b, src, d, cut, next)
		t0 := time.Now()
		t1 := <-closed
		total += t1.Sub(t0)
		cut = next
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/window")
}

// cpuSeconds is the process's user plus system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
