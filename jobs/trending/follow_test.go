package trending

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/table"
)

// followUntil runs Follow until it has processed source version `until` (or stopAfter rounds,
// when positive, to simulate a crash), and returns its error (nil when stopped by us).
func followUntil(t *testing.T, opts *FollowOptions, until func() int64, stopAfter int) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := *opts
	rounds := 0
	o.OnRound = func(v int64) {
		rounds++
		if (stopAfter > 0 && rounds >= stopAfter) || (until() >= 0 && v >= until()) {
			cancel()
		}
	}
	if stopAfter > 0 && stopAfter%2 == 0 {
		// Crash between the popular and the trending commits of a round.
		testHookAfterOutput = func(name string) {
			if name == OutPopular && rounds+1 >= stopAfter {
				cancel()
			}
		}
		defer func() { testHookAfterOutput = nil }()
	}
	err := Follow(ctx, &o)
	if errors.Is(err, context.Canceled) || (err != nil && ctx.Err() == context.Canceled) {
		return nil
	}
	return err
}

// appendConcurrently has two writers append the events after `from` in chunks, in time order
// per writer but racing each other, and returns the final source version.
func appendConcurrently(t *testing.T, src string, d *jobs.Dataset, from, chunks int, pause time.Duration) int64 {
	t.Helper()
	size := (len(d.Events) - from + chunks - 1) / chunks
	// Chunk c waits for chunk c-3 (the other writer's): the writers race, but stay within two
	// chunks (about 12 hours of events) of each other, inside the tests' allowed lateness.
	committed := make([]chan struct{}, chunks)
	for c := range committed {
		committed[c] = make(chan struct{})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last int64
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := w; c < chunks; c += 2 {
				if c >= 3 {
					<-committed[c-3]
				}
				lo := min(len(d.Events), from+c*size)
				hi := min(len(d.Events), lo+size)
				var v int64
				if lo < hi {
					v = writeDataset(t, src, d, lo, hi)
				}
				close(committed[c])
				mu.Lock()
				last = max(last, v)
				mu.Unlock()
				time.Sleep(pause)
			}
		}()
	}
	wg.Wait()
	return last
}

func followParams() Params {
	// Two writers race, each a chunk (a few hours of events) apart: a lateness of a day keeps
	// every event on time, so the follower must equal the batch run row for row.
	return Params{Lateness: 24 * time.Hour}
}

func TestFollowEqualsBatch(t *testing.T) {
	d := smallDataset(t, 11)
	src, out, ref := memURI("events"), memURI("follow"), memURI("batch")
	first := len(d.Events) / 5
	writeDataset(t, src, d, 0, first)

	var final atomicInt64
	final.Store(-1)
	errc := make(chan error, 1)
	var commits int
	go func() {
		errc <- followUntil(t, &FollowOptions{Options: Options{Source: src, SourceVersion: -1, Output: out, Params: followParams()},
			Poll: 5 * time.Millisecond, OnCommit: func(int64, []Window, []OutputResult) { commits++ }}, final.Load, 0)
	}()
	v := appendConcurrently(t, src, d, first, 16, 3*time.Millisecond)
	final.Store(v)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), &Options{Source: src, SourceVersion: -1, Output: ref, Params: followParams()}); err != nil {
		t.Fatal(err)
	}
	t.Logf("follower committed %d rounds", commits)
	compareOutputs(t, out, ref)
}

// A follower stopped at random points (a crash between rounds, or between the two outputs'
// commits) and restarted gives the batch result: no window twice, none skipped. Restarts go
// through a checkpoint written every round, or through a full scan.
func TestFollowRestart(t *testing.T) {
	for _, every := range []time.Duration{time.Nanosecond, -1} {
		name := "checkpoint"
		if every < 0 {
			name = "rescan"
		}
		t.Run(name, func(t *testing.T) { testFollowRestart(t, every) })
	}
}

func testFollowRestart(t *testing.T, every time.Duration) {
	d := smallDataset(t, 12)
	src, out, ref := memURI("events"), memURI("follow"), memURI("batch")
	first := len(d.Events) / 5
	writeDataset(t, src, d, 0, first)
	rng := rand.New(rand.NewPCG(1, 2))
	var final atomicInt64
	final.Store(-1)
	done := make(chan int64, 1)
	go func() { done <- appendConcurrently(t, src, d, first, 16, 4*time.Millisecond) }()
	var progress syncBuffer
	opts := &FollowOptions{Options: Options{Source: src, SourceVersion: -1, Output: out, Params: followParams(), Progress: &progress},
		Poll: 3 * time.Millisecond, CheckpointEvery: every}
	for restarts := 0; ; restarts++ {
		select {
		case v := <-done:
			final.Store(v)
		default:
		}
		stop := 1 + rng.IntN(4)
		if final.Load() >= 0 {
			stop = 0
		}
		if err := followUntil(t, opts, final.Load, stop); err != nil {
			t.Fatal(err)
		}
		if final.Load() >= 0 && stop == 0 {
			t.Logf("%d restarts", restarts)
			break
		}
	}
	if _, err := Run(context.Background(), &Options{Source: src, SourceVersion: -1, Output: ref, Params: followParams()}); err != nil {
		t.Fatal(err)
	}
	compareOutputs(t, out, ref)
	fromCkpt := strings.Count(progress.String(), "from the checkpoint")
	t.Logf("%d starts from a checkpoint", fromCkpt)
	if (every > 0) != (fromCkpt > 0) || strings.Contains(progress.String(), "checkpoint ignored") {
		t.Errorf("checkpoint every %s: %d starts from a checkpoint:\n%s", every, fromCkpt, progress.String())
	}
}

// A corrupt checkpoint is ignored: the follower rebuilds from a full scan.
func TestFollowCorruptCheckpoint(t *testing.T) {
	d := smallDataset(t, 13)
	src, out, ref := memURI("events"), memURI("follow"), memURI("batch")
	v := writeDataset(t, src, d, 0, len(d.Events)/2)
	opts := &FollowOptions{Options: Options{Source: src, SourceVersion: -1, Output: out, Params: followParams()}, Poll: time.Millisecond, CheckpointEvery: time.Nanosecond}
	if err := followUntil(t, opts, func() int64 { return v }, 0); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tb, err := table.Open(ctx, jobs.ChildURI(out, OutTrending), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := checkpointKey(jobs.AppID("trending", OutTrending, paramsMap(src, mustDetector(t, followParams()).Params())))
	if ok, _ := tb.Bucket().Exists(ctx, key); !ok {
		t.Fatalf("no checkpoint at %s", key)
	}
	if err := tb.Bucket().WriteAll(ctx, key, []byte("garbage"), nil); err != nil {
		t.Fatal(err)
	}
	tb.Close()
	v = writeDataset(t, src, d, len(d.Events)/2, len(d.Events))
	var progress syncBuffer
	opts.Progress = &progress
	if err := followUntil(t, opts, func() int64 { return v }, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "checkpoint ignored") {
		t.Errorf("progress:\n%s", progress.String())
	}
	if _, err := Run(ctx, &Options{Source: src, SourceVersion: -1, Output: ref, Params: followParams()}); err != nil {
		t.Fatal(err)
	}
	compareOutputs(t, out, ref)
}

func mustDetector(t *testing.T, p Params) *Detector {
	t.Helper()
	d, err := NewDetector(&p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func compareOutputs(t *testing.T, got, want string) {
	t.Helper()
	for _, name := range []string{OutPopular, OutTrending} {
		g := outputRows(t, jobs.ChildURI(got, name))
		w := outputRows(t, jobs.ChildURI(want, name))
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			n := 0
			for _, r := range g {
				if _, ok := slices.BinarySearch(w, r); !ok && n < 5 {
					t.Errorf("%s: follow has %q, batch does not", name, r)
					n++
				}
			}
			for _, r := range w {
				if _, ok := slices.BinarySearch(g, r); !ok && n < 10 {
					t.Errorf("%s: batch has %q, follow does not", name, r)
					n++
				}
			}
			t.Fatalf("%s: follow %d rows, batch %d rows", name, len(g), len(w))
		}
		t.Logf("%s: %d rows equal", name, len(g))
	}
}

type atomicInt64 struct {
	mu sync.Mutex
	v  int64
}

func (a *atomicInt64) Load() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.v
}

func (a *atomicInt64) Store(v int64) {
	a.mu.Lock()
	a.v = v
	a.mu.Unlock()
}
