package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Task is one scheduled job: when it runs (a timer, a polled condition, or continuously) and
// what it does.
type Task struct {
	// Name identifies the task in the status, the logs and the metrics (als, trending, ...).
	Name string
	// Schedule describes when the task runs, for people ("every 6h or at 100000 new rows").
	Schedule string
	// Every runs the task when this long has passed since the end of its last run (0: no timer).
	Every time.Duration
	// Due, when set, is called every Poll; the task runs when it returns true. An error is
	// logged and the check tried again at the next poll.
	Due  func(ctx context.Context) (bool, error)
	Poll time.Duration
	// Last is when the task last ended before the scheduler started (from the model registry);
	// zero: the timer starts at the scheduler's start.
	Last time.Time
	// Continuous tasks run until ctx is done (trending --follow): Run is started at once and
	// started again, with backoff, whenever it returns an error.
	Continuous bool
	// Run does the work. note, which may be called while it runs, updates the task's last
	// result (a continuous task reports each round through it).
	Run func(ctx context.Context, note func(Result)) (Result, error)
}

// Result is what a run did.
type Result struct {
	Summary   string `json:"summary"`
	RunID     string `json:"run_id,omitempty"`     // the registry run it registered
	RunStatus string `json:"run_status,omitempty"` // live, candidate, rejected
	Skipped   bool   `json:"skipped,omitempty"`    // nothing to do (no new data)
}

// TaskStatus is a task's state, as GET /v1/ops shows it.
type TaskStatus struct {
	Name                string     `json:"name"`
	Schedule            string     `json:"schedule"`
	Running             bool       `json:"running"`
	Runs                int64      `json:"runs"`     // runs finished, successful or not
	Failures            int64      `json:"failures"` // of which failed
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LastStart           *time.Time `json:"last_start,omitempty"`
	LastEnd             *time.Time `json:"last_end,omitempty"`
	LastSuccess         *time.Time `json:"last_success,omitempty"`
	LastResult          *Result    `json:"last_result,omitempty"`
	LastError           string     `json:"last_error,omitempty"`
	NextRun             *time.Time `json:"next_run,omitempty"` // the next timer tick or retry; nil: on a condition, or running
}

// Report is GET /v1/ops: every task's status.
type Report struct {
	Now   time.Time    `json:"now"`
	Tasks []TaskStatus `json:"tasks"`
}

// Clock is the scheduler's time (tests use a fake one).
type Clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx is done (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SchedulerOptions configure a Scheduler. A nil *SchedulerOptions is the defaults.
type SchedulerOptions struct {
	// RetryInitial is the delay before the first retry of a failed run (default 5s); it doubles
	// with each consecutive failure up to RetryMax (default 10m). Each delay is jittered by
	// ±20%.
	RetryInitial, RetryMax time.Duration
	// Clock is the time source (default the real one).
	Clock Clock
	// Jitter returns a number in [0, 1) (default math/rand/v2).
	Jitter func() float64
	// Logger gets one line per failure (warn) and per run (info); nil discards.
	Logger *slog.Logger
	// Registerer, when set, gets the scheduler's metrics:
	//
	//	lake_ops_runs_total{task,result}              runs by result: success, skipped, failure
	//	lake_ops_last_success_timestamp_seconds{task} when the task last succeeded (Unix time)
	//	lake_ops_consecutive_failures{task}           failures since the last success
	Registerer prometheus.Registerer
}

// Scheduler runs tasks: each in its own goroutine, on its schedule. A failed run (an error or
// a panic) is logged, counted and retried with exponential backoff; it never stops the
// scheduler or the other tasks.
type Scheduler struct {
	tasks []Task
	o     SchedulerOptions

	mu     sync.Mutex
	status []TaskStatus

	runs        *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	consecutive *prometheus.GaugeVec
}

// NewScheduler returns a scheduler of tasks; Run starts them.
func NewScheduler(tasks []Task, opts *SchedulerOptions) (*Scheduler, error) {
	var o SchedulerOptions
	if opts != nil {
		o = *opts
	}
	if o.RetryInitial == 0 {
		o.RetryInitial = DefaultRetryInitial
	}
	if o.RetryMax == 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.RetryInitial < 0 || o.RetryMax < o.RetryInitial {
		return nil, fmt.Errorf("ops: want 0 < RetryInitial <= RetryMax, got %v and %v", o.RetryInitial, o.RetryMax)
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{tasks: slices.Clone(tasks), o: o}
	seen := map[string]bool{}
	for _, t := range tasks {
		switch {
		case t.Name == "" || seen[t.Name]:
			return nil, fmt.Errorf("ops: task names must be unique and not empty, got %q", t.Name)
		case t.Run == nil:
			return nil, fmt.Errorf("ops: task %s has no Run", t.Name)
		case !t.Continuous && t.Every <= 0 && t.Due == nil:
			return nil, fmt.Errorf("ops: task %s has neither Every nor Due", t.Name)
		case t.Due != nil && t.Poll <= 0:
			return nil, fmt.Errorf("ops: task %s has Due but no Poll", t.Name)
		}
		seen[t.Name] = true
		s.status = append(s.status, TaskStatus{Name: t.Name, Schedule: t.Schedule})
	}
	s.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lake_ops_runs_total", Help: "Scheduled runs by task and result (success, skipped, failure).",
	}, []string{"task", "result"})
	s.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lake_ops_last_success_timestamp_seconds", Help: "When the task last succeeded, in Unix seconds.",
	}, []string{"task"})
	s.consecutive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lake_ops_consecutive_failures", Help: "Failed runs of the task since its last success.",
	}, []string{"task"})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.runs, s.lastSuccess, s.consecutive} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("ops: register metrics: %w", err)
			}
		}
	}
	for _, t := range tasks {
		for _, r := range []string{"success", "skipped", "failure"} {
			s.runs.WithLabelValues(t.Name, r)
		}
		s.consecutive.WithLabelValues(t.Name)
	}
	return s, nil
}

// Run runs every task until ctx is done, then waits for the runs in flight to return (they
// get the cancelled ctx) and returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range s.tasks {
		wg.Go(func() {
			if s.tasks[i].Continuous {
				s.continuous(ctx, i)
			} else {
				s.scheduled(ctx, i)
			}
		})
	}
	wg.Wait()
	return nil
}

// Status returns every task's state, in the order the tasks were given.
func (s *Scheduler) Status() []TaskStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.status)
	for i := range out {
		if r := out[i].LastResult; r != nil {
			c := *r
			out[i].LastResult = &c
		}
	}
	return out
}

// Report returns the status as GET /v1/ops answers it.
func (s *Scheduler) Report() *Report {
	return &Report{Now: s.o.Clock.Now().UTC(), Tasks: s.Status()}
}

func (s *Scheduler) update(i int, fn func(st *TaskStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.status[i])
}

func timePtr(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}

// scheduled is the loop of a task on a timer and/or a condition.
func (s *Scheduler) scheduled(ctx context.Context, i int) {
	t := &s.tasks[i]
	last := t.Last
	if last.IsZero() {
		last = s.o.Clock.Now()
	}
	for {
		if !s.waitDue(ctx, i, last) {
			return
		}
		if !s.runWithRetry(ctx, i) {
			return
		}
		last = s.o.Clock.Now()
	}
}

// waitDue waits until the task is due: its timer has passed or Due said so. It returns false
// when ctx is done.
func (s *Scheduler) waitDue(ctx context.Context, i int, last time.Time) bool {
	t := &s.tasks[i]
	var nextPoll time.Time // zero: check at once
	for {
		now := s.o.Clock.Now()
		var wake time.Time
		if t.Every > 0 {
			due := last.Add(t.Every)
			if !now.Before(due) {
				return true
			}
			wake = due
			s.update(i, func(st *TaskStatus) { st.NextRun = timePtr(due) })
		}
		if t.Due != nil {
			if !now.Before(nextPoll) {
				ok, err := s.check(ctx, t)
				if ctx.Err() != nil {
					return false
				}
				if err != nil {
					s.o.Logger.Warn("checking whether a scheduled task is due", "task", t.Name, "err", err)
				}
				if ok {
					return true
				}
				now = s.o.Clock.Now()
				nextPoll = now.Add(t.Poll)
			}
			if wake.IsZero() || nextPoll.Before(wake) {
				wake = nextPoll
			}
		}
		if err := s.o.Clock.Sleep(ctx, wake.Sub(now)); err != nil {
			return false
		}
	}
}

// check calls Due, turning a panic into an error.
func (s *Scheduler) check(ctx context.Context, t *Task) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return t.Due(ctx)
}

// runWithRetry runs the task until a run succeeds; it returns false when ctx is done.
func (s *Scheduler) runWithRetry(ctx context.Context, i int) bool {
	for failures := 1; ; failures++ {
		if _, err := s.runOnce(ctx, i); err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if !s.backoff(ctx, i, failures) {
			return false
		}
	}
}

// continuous is the loop of a task that runs until ctx is done.
func (s *Scheduler) continuous(ctx context.Context, i int) {
	for {
		start := s.o.Clock.Now()
		_, err := s.runOnce(ctx, i)
		if ctx.Err() != nil {
			return
		}
		var failures int
		s.update(i, func(st *TaskStatus) {
			if err == nil {
				// It returned without being asked to: start it again after a pause.
				st.ConsecutiveFailures++
				st.LastError = "stopped by itself; restarting"
			}
			if s.o.Clock.Now().Sub(start) > s.o.RetryMax {
				st.ConsecutiveFailures = 1 // it ran well for a while: this failure starts a new series
			}
			failures = st.ConsecutiveFailures
		})
		if !s.backoff(ctx, i, failures) {
			return
		}
	}
}

// delay is the wait before retry number failures (from 1): RetryInitial doubled per failure,
// capped at RetryMax, times a jitter in [0.8, 1.2).
func (s *Scheduler) delay(failures int) time.Duration {
	d := s.o.RetryInitial
	for k := 1; k < failures && d < s.o.RetryMax; k++ {
		d *= 2
	}
	d = min(d, s.o.RetryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*s.o.Jitter()))
}

func (s *Scheduler) backoff(ctx context.Context, i int, failures int) bool {
	d := s.delay(failures)
	next := s.o.Clock.Now().Add(d)
	s.update(i, func(st *TaskStatus) { st.NextRun = timePtr(next) })
	s.o.Logger.Warn("retrying a failed scheduled run", "task", s.tasks[i].Name, "consecutive_failures", failures, "retry_in", d.Round(time.Millisecond))
	return s.o.Clock.Sleep(ctx, d) == nil
}

// runOnce runs the task once, recording its status and metrics; a panic is a failure.
func (s *Scheduler) runOnce(ctx context.Context, i int) (res Result, err error) {
	t := &s.tasks[i]
	start := s.o.Clock.Now()
	s.update(i, func(st *TaskStatus) {
		st.Running, st.LastStart, st.NextRun = true, timePtr(start), nil
	})
	note := func(r Result) {
		s.update(i, func(st *TaskStatus) { st.LastResult = &r })
		if !t.Continuous {
			return
		}
		now := s.o.Clock.Now()
		s.runs.WithLabelValues(t.Name, "success").Inc()
		s.lastSuccess.WithLabelValues(t.Name).Set(float64(now.UnixNano()) / 1e9)
		s.consecutive.WithLabelValues(t.Name).Set(0)
		s.update(i, func(st *TaskStatus) { st.LastSuccess, st.ConsecutiveFailures, st.LastError = timePtr(now), 0, "" })
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
				s.o.Logger.Error("a scheduled run panicked", "task", t.Name, "panic", r, "stack", string(debug.Stack()))
			}
		}()
		res, err = t.Run(ctx, note)
	}()
	end := s.o.Clock.Now()
	stopped := err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
	if ctx.Err() != nil && (stopped || err == nil && t.Continuous) {
		// Stopped by the shutdown: neither a success nor a failure.
		s.update(i, func(st *TaskStatus) { st.Running, st.LastEnd = false, timePtr(end) })
		return res, ctx.Err()
	}
	if err != nil {
		s.runs.WithLabelValues(t.Name, "failure").Inc()
		var n int
		s.update(i, func(st *TaskStatus) {
			st.Running, st.LastEnd = false, timePtr(end)
			st.Runs++
			st.Failures++
			st.ConsecutiveFailures++
			st.LastError = err.Error()
			n = st.ConsecutiveFailures
		})
		s.consecutive.WithLabelValues(t.Name).Set(float64(n))
		s.o.Logger.Warn("a scheduled run failed", "task", t.Name, "consecutive_failures", n, "err", err)
		return res, err
	}
	result := "success"
	if res.Skipped {
		result = "skipped"
	}
	s.runs.WithLabelValues(t.Name, result).Inc()
	s.lastSuccess.WithLabelValues(t.Name).Set(float64(end.UnixNano()) / 1e9)
	s.consecutive.WithLabelValues(t.Name).Set(0)
	s.update(i, func(st *TaskStatus) {
		st.Running, st.LastEnd, st.LastSuccess = false, timePtr(end), timePtr(end)
		st.Runs++
		st.ConsecutiveFailures, st.LastError = 0, ""
		st.LastResult = &res
	})
	s.o.Logger.Info("a scheduled run finished", "task", t.Name, "result", res.Summary, "seconds", end.Sub(start).Seconds())
	return res, nil
}
