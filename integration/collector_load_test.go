package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// envInt reads a positive integer environment variable with a default.
func envInt(tb testing.TB, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			tb.Fatalf("%s=%q: want a number", name, s)
		}
		return n
	}
	return def
}

// metricValue reads one sample of the server's /metrics.
func metricValue(tb testing.TB, base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}

// procCPU is the user+system CPU time a process has used (Linux /proc; 0 elsewhere).
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses): utime and stime are the 12th
	// and 13th, in clock ticks (100 per second on Linux).
	rest := string(data[bytes.LastIndexByte(data, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// BenchmarkCollectorLoad drives `lake serve` (a separate process) over loopback from a pool of
// goroutines at a fixed offered rate, and reports the rate achieved, the latency percentiles
// (measured from each request's scheduled start, so a stalled server cannot hide its queueing),
// and how long after the last answer every event was committed to the table.
//
//	go test -run '^$' -bench CollectorLoad -benchtime 1x ./integration
//
// LAKE_LOAD_RATE (events/s offered, default 20000), LAKE_LOAD_SECONDS (default 10),
// LAKE_LOAD_WORKERS (default 64). The rabbit sub-benchmarks need RabbitMQ (scripts/services.sh).
func BenchmarkCollectorLoad(b *testing.B) {
	rate := envInt(b, "LAKE_LOAD_RATE", 20000)
	secs := envInt(b, "LAKE_LOAD_SECONDS", 10)
	workers := envInt(b, "LAKE_LOAD_WORKERS", 64)
	for _, c := range []struct {
		name     string
		queue    string
		perReq   int
		rabbitMQ bool
	}{
		{"mem/pixel", "mem://load", 1, false},
		{"mem/post100", "mem://load", 100, false},
		{"rabbit/pixel", "", 1, true},
		{"rabbit/post100", "", 100, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			queue := c.queue
			if c.rabbitMQ {
				amqpURL := requireRabbit(b)
				name := uniqueName("lake-load")
				queue = "rabbit://" + name
				b.Cleanup(func() { deleteQueue(amqpURL, name) })
			}
			for range b.N {
				collectorLoad(b, queue, c.perReq, rate, secs, workers)
			}
		})
	}
}

func collectorLoad(b *testing.B, queue string, perReq, rate, secs, workers int) {
	b.StopTimer()
	uri := filepath.Join(b.TempDir(), "events")
	if _, errOut, err := runCmd(b.Context(), lake(b), "create", uri, "--schema", "interactions"); err != nil {
		b.Fatalf("create: %v %s", err, errOut)
	}
	srv, base := startServe(b, "--table", uri, "--queue", queue, "--rate-limit", "0",
		"--batch-rows", "20000", "--batch-interval", "1s")
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers, DisableCompression: true}, Timeout: 30 * time.Second}

	requests := rate * secs / perReq
	interval := time.Duration(float64(time.Second) * float64(perReq) / float64(rate)) // between requests, all workers together
	lat := make([][]time.Duration, workers)
	var failures sync.Map
	var wg sync.WaitGroup
	var body []byte
	if perReq > 1 {
		var buf bytes.Buffer
		for i := range perReq {
			fmt.Fprintf(&buf, `{"user_id":"u%d","item_id":"i%d","interaction_type":"view"}`+"\n", i%50, i%200)
		}
		body = buf.Bytes()
	}
	cpu0 := procCPU(srv.cmd.Process.Pid)
	b.StartTimer()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < requests; i += workers {
				sched := start.Add(time.Duration(i) * interval)
				if d := time.Until(sched); d > 0 {
					time.Sleep(d)
				}
				var resp *http.Response
				var err error
				if perReq == 1 {
					resp, err = client.Get(fmt.Sprintf("%s/p.gif?u=u%d&i=i%d&t=view", base, i%1000, i%300))
				} else {
					resp, err = client.Post(base+"/v1/events", "application/x-ndjson", bytes.NewReader(body))
				}
				if err != nil {
					failures.Store(err.Error(), true)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 202 {
					failures.Store(resp.Status, true)
					continue
				}
				lat[w] = append(lat[w], time.Since(sched))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	lastAnswer := time.Now()
	b.StopTimer()

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	failures.Range(func(k, _ any) bool { b.Errorf("request failed: %v", k); return true })
	want := float64(len(all) * perReq)
	// Time until every accepted event is committed.
	var committed float64
	for committed < want {
		committed = metricValue(b, base, "lake_committer_events_committed_total")
		if time.Since(lastAnswer) > 2*time.Minute {
			b.Fatalf("2 minutes after the load, %v of %v events committed", committed, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	toCommit := time.Since(lastAnswer)
	lag := metricValue(b, base, "lake_committer_queue_lag_seconds")
	cpu := procCPU(srv.cmd.Process.Pid) - cpu0
	srv.stop(b)
	if got := len(columnValues(b, uri, "event_id")); float64(got) != want {
		b.Fatalf("table has %d rows, want %v", got, want)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	b.ReportMetric(want/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max_ms")
	b.ReportMetric(toCommit.Seconds(), "commit_s")
	b.ReportMetric(lag, "last_lag_s")
	b.ReportMetric(float64(cpu.Microseconds())/want, "serve_cpu_us/event")
	b.Logf("%s, %d per request: %v events in %v (offered %d/s): p50 %v p99 %v max %v; all committed %v after the last answer; last batch lag %.2fs; lake serve used %v of CPU (%.1f µs per event)",
		queue, perReq, want, elapsed.Round(time.Millisecond), rate, pct(0.5), pct(0.99), all[len(all)-1], toCommit.Round(time.Millisecond), lag,
		cpu.Round(time.Millisecond), float64(cpu.Microseconds())/want)
}
