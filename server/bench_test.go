package server

import (
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"gocloud.dev/pubsub/mempubsub"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/registry"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer"
)

// drainedServer is a collector without rate limits on a mem:// topic that a consumer drains until
// the benchmark ends.
func drainedServer(b *testing.B) *Server {
	topic := mempubsub.NewTopic()
	sub := mempubsub.NewSubscription(topic, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go func() {
		for {
			m, err := sub.Receive(ctx)
			if err != nil {
				return
			}
			m.Ack()
		}
	}()
	srv, err := New(topic, &Options{RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

// BenchmarkPixel is the collector's per-event cost without the network: parse, validate, give an
// id, marshal, queue on mem://, answer (a consumer drains the queue alongside).
func BenchmarkPixel(b *testing.B) {
	srv := drainedServer(b)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest("GET", "/p.gif?u=user-1&i=item-2&t=view&ts=1700000000000", nil))
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}

// BenchmarkPost100 is the cost of a POST of 100 NDJSON events.
func BenchmarkPost100(b *testing.B) {
	srv := drainedServer(b)
	body := strings.Repeat(`{"user_id":"u1","item_id":"i1","interaction_type":"view","timestamp":1700000000000}`+"\n", 100)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("POST", "/v1/events", strings.NewReader(body)))
		if w.Code != 202 {
			b.Fatal(w.Code)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// writeSimilar commits similar_items under prefix: items items x neighbours similar items, with
// ids like lake gen's ("i123") and ranks 1..neighbours, replacing what was there. It returns the
// version committed.
func writeSimilar(b *testing.B, prefix string, items, neighbours int) int64 {
	b.Helper()
	ctx := context.Background()
	uri := jobs.ChildURI(prefix, OutSimilar)
	tb, err := table.Open(ctx, uri, nil)
	if err != nil {
		if tb, err = table.Create(ctx, uri, pairSchema("item_id"), nil); err != nil {
			b.Fatal(err)
		}
	}
	defer tb.Close()
	w, err := writer.New(ctx, tb, &writer.Options{Mode: writer.Overwrite})
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 10000 // items per record batch
	for lo := 0; lo < items; lo += chunk {
		rb := array.NewRecordBuilder(memory.DefaultAllocator, w.Schema())
		keys := rb.Field(0).(*array.StringBuilder)
		sims := rb.Field(1).(*array.StringBuilder)
		scores := rb.Field(2).(*array.Float64Builder)
		ranks := rb.Field(3).(*array.Int32Builder)
		for i := lo; i < min(lo+chunk, items); i++ {
			id := jobs.ItemID(int32(i))
			for r := range neighbours {
				keys.Append(id)
				sims.Append(jobs.ItemID(int32((i + 1 + r*7919) % items)))
				scores.Append(1 / float64(r+1))
				ranks.Append(int32(r + 1))
			}
		}
		rec := rb.NewRecordBatch()
		rb.Release()
		err := w.Write(ctx, rec)
		rec.Release()
		if err != nil {
			b.Fatal(err)
		}
	}
	res, err := w.Close(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return res.Version
}

// liveHeap is the heap in use by live objects, after two collections.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkServedModelMemory is the memory of a served similar_items table of 100,000 items x 20
// similar items: the live heap that loading it adds, after collection (the table is written once,
// outside the timer; each iteration loads it into a new Outputs).
func BenchmarkServedModelMemory(b *testing.B) {
	const items, neighbours = 100000, 20
	prefix := filepath.Join(b.TempDir(), "out")
	writeSimilar(b, prefix, items, neighbours)
	ctx := context.Background()
	var heap uint64
	var load time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		before := liveHeap()
		b.StartTimer()
		start := time.Now()
		o, err := NewOutputs(prefix, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := o.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		load = time.Since(start)
		b.StopTimer()
		if st := o.similar.cur.Load(); st == nil || len(st.lists) != items {
			b.Fatalf("loaded %v", o.Versions())
		}
		heap = liveHeap() - before
		runtime.KeepAlive(o)
		o.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(heap)/items, "B/item")
	b.ReportMetric(float64(heap)/(items*neighbours), "B/neighbour")
	b.ReportMetric(load.Seconds(), "load-s")
}

// BenchmarkRetrainToServe is the time from a committed retrain to the read API serving it: each
// iteration commits a new version of similar_items (items x 20), registers it live in the model
// registry (as `lake als` does after its commits), and waits until Outputs, picking versions from
// the registry as `lake serve` does, serves it. In refresh/ the server refreshes at once after
// the registration (the delay without the poll: register + pick + load + swap); in poll=3s/ it
// runs its Run loop at lake serve's default --outputs-poll, whose wait adds on average half a
// poll (each commit comes at a random phase of the poll). The metrics: commit-to-serve-ms in
// all (mean; and max-commit-to-serve-ms), of which register-ms and, for refresh/, load-ms.
func BenchmarkRetrainToServe(b *testing.B) {
	for _, c := range []struct {
		name  string
		items int
		poll  time.Duration
	}{
		{"refresh/items=10000", 10000, 0},
		{"refresh/items=100000", 100000, 0},
		{"poll=3s/items=10000", 10000, 3 * time.Second},
		{"poll=3s/items=100000", 100000, 3 * time.Second},
	} {
		b.Run(c.name, func(b *testing.B) { benchRetrainToServe(b, c.items, c.poll) })
	}
}

func benchRetrainToServe(b *testing.B, items int, poll time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := filepath.Join(b.TempDir(), "out")
	register := func(v int64) {
		_, err := registry.Register(ctx, prefix, &registry.Registration{
			Job: registry.JobALS, Outputs: map[string]int64{OutSimilar: v},
			Metrics: map[string]any{registry.MetricRecall: 0.5}, Evaluated: true,
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	register(writeSimilar(b, prefix, items, 20))
	opts := &OutputsOptions{Poll: poll, Pick: registry.NewPicker(prefix).Pick}
	if poll == 0 {
		opts.Poll = time.Hour // refreshed by hand
	}
	o, err := NewOutputs(prefix, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	if poll > 0 {
		done := make(chan struct{})
		go func() { defer close(done); o.Run(ctx) }()
		defer func() { cancel(); <-done }()
	} else if err := o.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	var total, reg, load, worst time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if poll > 0 { // commit at a random phase of the poll, as a retrain would
			time.Sleep(rand.N(poll))
		}
		v := writeSimilar(b, prefix, items, 20)
		committed := time.Now()
		b.StartTimer()
		register(v)
		registered := time.Now()
		if poll == 0 {
			if err := o.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for o.Versions()[OutSimilar] != v {
			time.Sleep(time.Millisecond)
		}
		served := time.Now()
		total += served.Sub(committed)
		worst = max(worst, served.Sub(committed))
		reg += registered.Sub(committed)
		load += served.Sub(registered)
	}
	n := float64(b.N)
	b.ReportMetric(float64(total.Milliseconds())/n, "commit-to-serve-ms")
	b.ReportMetric(float64(worst.Milliseconds()), "max-commit-to-serve-ms")
	b.ReportMetric(float64(reg.Milliseconds())/n, "register-ms")
	if poll == 0 {
		b.ReportMetric(float64(load.Milliseconds())/n, "load-ms")
	} else {
		b.ReportMetric(float64(load.Milliseconds())/n, "poll-and-load-ms")
	}
}
