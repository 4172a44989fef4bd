package ops

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock advances its time by each Sleep at once, and records the sleeps.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(max(d, 0))
	c.mu.Unlock()
	time.Sleep(100 * time.Microsecond) // let other goroutines (and the test) run
	return ctx.Err()
}

func (c *fakeClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// runScheduler runs s until stop is closed or 10 s pass, then cancels it and waits.
func runScheduler(t *testing.T, s *Scheduler, ctx context.Context, cancel context.CancelFunc) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatalf("the scheduler did not finish: %+v", s.Status())
	}
	<-done
}

// A task failing twice then succeeding is retried after growing delays, and reported.
func TestRetryBackoff(t *testing.T) {
	clock := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	reg := prometheus.NewRegistry()
	s, err := NewScheduler([]Task{{
		Name: "als", Schedule: "every 1h", Every: time.Hour,
		Run: func(ctx context.Context, _ func(Result)) (Result, error) {
			if calls.Add(1) <= 2 {
				return Result{}, errors.New("storage unavailable")
			}
			cancel()
			return Result{Summary: "trained", RunID: "als-1", RunStatus: "live"}, nil
		},
	}}, &SchedulerOptions{Clock: clock, Jitter: func() float64 { return 0.5 }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	runScheduler(t, s, ctx, cancel)
	got := clock.recorded()
	want := []time.Duration{time.Hour, 5 * time.Second, 10 * time.Second}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("sleeps %v, want %v (the timer, then two growing retry delays)", got, want)
	}
	st := s.Status()[0]
	if st.Runs != 3 || st.Failures != 2 || st.ConsecutiveFailures != 0 || st.LastError != "" || st.Running ||
		st.LastResult == nil || st.LastResult.RunID != "als-1" || st.LastSuccess == nil {
		t.Errorf("status %+v", st)
	}
	if v := testutil.ToFloat64(s.runs.WithLabelValues("als", "failure")); v != 2 {
		t.Errorf("lake_ops_runs_total{result=failure} = %v, want 2", v)
	}
	if v := testutil.ToFloat64(s.runs.WithLabelValues("als", "success")); v != 1 {
		t.Errorf("lake_ops_runs_total{result=success} = %v, want 1", v)
	}
	if v := testutil.ToFloat64(s.lastSuccess.WithLabelValues("als")); v != float64(clock.Now().Unix()) {
		t.Errorf("lake_ops_last_success_timestamp_seconds = %v, want %v", v, clock.Now().Unix())
	}
	if n, err := testutil.GatherAndCount(reg, "lake_ops_runs_total"); err != nil || n != 3 {
		t.Errorf("registered lake_ops_runs_total series: %d %v", n, err)
	}
}

// The retry delays double up to the cap, jittered by ±20%.
func TestBackoffDelays(t *testing.T) {
	jitter := 0.0
	s, err := NewScheduler(nil, &SchedulerOptions{RetryInitial: time.Second, RetryMax: 30 * time.Second, Jitter: func() float64 { return jitter }})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		failures int
		jitter   float64
		want     time.Duration
	}{
		{1, 0.5, time.Second}, {2, 0.5, 2 * time.Second}, {3, 0.5, 4 * time.Second}, {5, 0.5, 16 * time.Second},
		{6, 0.5, 30 * time.Second}, {60, 0.5, 30 * time.Second}, {1, 0, 800 * time.Millisecond}, {6, 0.999999, 36 * time.Second},
	} {
		jitter = c.jitter
		if got := s.delay(c.failures); got.Round(time.Millisecond) != c.want {
			t.Errorf("delay(%d) with jitter %v = %v, want %v", c.failures, c.jitter, got, c.want)
		}
	}
}

// A panicking task is a failed run; the scheduler and the other tasks go on.
func TestPanicDoesNotKillScheduler(t *testing.T) {
	clock := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var okRuns, booms atomic.Int32
	s, err := NewScheduler([]Task{
		{Name: "boom", Every: time.Minute, Run: func(context.Context, func(Result)) (Result, error) {
			booms.Add(1)
			var m map[string]int
			m["x"] = 1 // a nil map write: panics
			return Result{}, nil
		}},
		{Name: "ok", Every: time.Minute, Run: func(context.Context, func(Result)) (Result, error) {
			okRuns.Add(1)
			return Result{Summary: "fine"}, nil
		}},
	}, &SchedulerOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for okRuns.Load() < 3 || booms.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("ok ran %d times, boom %d", okRuns.Load(), booms.Load())
		}
		time.Sleep(time.Millisecond)
	}
	st := s.Status()
	cancel()
	<-done
	if st[0].ConsecutiveFailures < 2 || !strings.Contains(st[0].LastError, "panic") || st[0].LastSuccess != nil {
		t.Errorf("boom status %+v", st[0])
	}
	if st[1].Failures != 0 || st[1].Runs < 3 {
		t.Errorf("ok status %+v", st[1])
	}
}

// A task with a timer and a condition runs at whichever comes first.
func TestTriggerWhicheverFirst(t *testing.T) {
	clock := newFakeClock()
	start := clock.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rows atomic.Int64 // grows by 30 per check
	var ranAt []time.Duration
	s, err := NewScheduler([]Task{{
		Name: "als", Every: 6 * time.Hour, Poll: 10 * time.Second,
		Due: func(context.Context) (bool, error) {
			n := rows.Add(30)
			if n == 60 {
				return false, errors.New("a transient listing error") // logged, checked again
			}
			return n%300 >= 100, nil // 100 more rows since the last run (rows reset to 0 by the run)
		},
		Run: func(context.Context, func(Result)) (Result, error) {
			ranAt = append(ranAt, clock.Now().Sub(start))
			rows.Store(-1 << 40) // no more new rows: only the timer fires now
			if len(ranAt) == 2 {
				cancel()
			}
			return Result{Summary: "ok"}, nil
		},
	}}, &SchedulerOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	runScheduler(t, s, ctx, cancel)
	// Checks at 0, 10, 20, 30 s: the 4th sees 120 rows. Then the timer: 6 h after that run's end.
	if len(ranAt) != 2 || ranAt[0] != 30*time.Second || ranAt[1] != 30*time.Second+6*time.Hour {
		t.Errorf("ran at %v; want [30s 6h0m30s]", ranAt)
	}
}

// A continuous task that fails is started again with backoff; each reported round resets the
// consecutive failures.
func TestContinuousRestart(t *testing.T) {
	clock := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var starts atomic.Int32
	s, err := NewScheduler([]Task{{
		Name: "trending", Continuous: true,
		Run: func(ctx context.Context, note func(Result)) (Result, error) {
			switch starts.Add(1) {
			case 1, 2:
				return Result{}, errors.New("source unreadable")
			case 3:
				note(Result{Summary: "committed 2 windows", RunID: "trending-1", RunStatus: "live"})
				return Result{}, errors.New("lost the lease")
			}
			note(Result{Summary: "committed 1 window"})
			cancel()
			<-ctx.Done()
			return Result{}, ctx.Err()
		},
	}}, &SchedulerOptions{Clock: clock, Jitter: func() float64 { return 0.5 }})
	if err != nil {
		t.Fatal(err)
	}
	runScheduler(t, s, ctx, cancel)
	got := clock.recorded()
	want := []time.Duration{5 * time.Second, 10 * time.Second, 5 * time.Second} // a round succeeded before the third failure
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("restart delays %v, want %v", got, want)
	}
	st := s.Status()[0]
	if st.ConsecutiveFailures != 0 || st.LastResult == nil || st.LastResult.Summary != "committed 1 window" || st.Failures != 3 {
		t.Errorf("status %+v", st)
	}
}
