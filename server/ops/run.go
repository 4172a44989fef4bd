package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/lakehouse/lake/registry"
	"github.com/lakehouse/lake/server"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer/stream"
)

// RunOptions are what Run needs besides the Config. A nil *RunOptions is the defaults.
type RunOptions struct {
	// Logger gets failures and retries (and, at info, one line per batch and per scheduled
	// run); nil: text lines to Stdout at the Config's log_level.
	Logger *slog.Logger
	// Stdout gets the lines for people: the address listened on (`listening on
	// http://127.0.0.1:8080`), the schedule, and a closing summary. nil discards.
	Stdout io.Writer
	// Progress gets the jobs' progress lines; nil: none.
	Progress io.Writer
	// Listener, when set, is served instead of listening on the Config's server.addr.
	Listener net.Listener
	// Clock is the scheduler's time (tests); nil is the real clock.
	Clock Clock
	// Jitter returns a number in [0, 1) for the retry backoff (tests); nil is random.
	Jitter func() float64
	// Started, when set, is called once everything runs, with the address served and the
	// scheduler (tests).
	Started func(addr net.Addr, s *Scheduler)
}

// ErrNoTable: the events table does not exist or lacks the interaction columns.
var ErrNoTable = errors.New("not an interaction table")

// OpenTable opens the events table and checks it can take interaction events.
func OpenTable(ctx context.Context, uri string) (*table.Table, error) {
	t, err := table.Open(ctx, uri, nil)
	if err != nil {
		if errors.Is(err, txlog.ErrNotATable) {
			return nil, fmt.Errorf("%w: %s is not a table: create it first with `lake create %s --schema interactions`", ErrNoTable, uri, uri)
		}
		return nil, err
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		t.Close()
		if errors.Is(err, txlog.ErrNotATable) {
			return nil, fmt.Errorf("%w: %s is not a table: create it first with `lake create %s --schema interactions`", ErrNoTable, uri, uri)
		}
		return nil, err
	}
	for _, c := range []string{"event_id", "user_id", "item_id", "interaction_type", "timestamp", "event_date"} {
		if _, ok := snap.Schema().Field(c); !ok {
			t.Close()
			return nil, fmt.Errorf("%w: %s has no %s column: events go to a table with the interaction schema (lake create URI --schema interactions)", ErrNoTable, uri, c)
		}
	}
	return t, nil
}

// CloseQueue shuts the queue down (pending acks are sent) and logs what failed: an ack that
// did not reach the broker means a redelivery later, which the next committer drops by event_id.
func CloseQueue(q *stream.Queue, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		logger.Warn("closing the queue", "queue", q.URL(), "err", err)
	}
}

// Stats sum what the committer did.
type Stats struct{ batches, written, quarantined, duplicate atomic.Int64 }

// Add counts a committed batch.
func (s *Stats) Add(b stream.BatchResult) {
	if b.Version >= 0 {
		s.batches.Add(1)
	}
	s.written.Add(b.Written)
	s.quarantined.Add(b.Quarantined)
	s.duplicate.Add(b.Duplicate)
}

func (s *Stats) String() string {
	return fmt.Sprintf("committed %d events in %d batches (%d quarantined, %d duplicates dropped)",
		s.written.Load(), s.batches.Load(), s.quarantined.Load(), s.duplicate.Load())
}

// Run runs everything cfg names in this process until ctx is done: the collector and the read
// APIs over HTTP, the committer from the queue into the table, and the scheduler of the jobs
// and the maintenance (GET /v1/ops shows it). A failed scheduled run is logged, counted and
// retried with backoff; it never stops the server. Run returns when ctx is done and everything
// has stopped (nil), or when the committer or the HTTP server fails.
//
// On shutdown the HTTP server stops first, then the scheduler (runs in flight are cancelled),
// then the committer, so every event the collector accepted is committed (mem://: drained) or
// left in the durable queue.
func Run(ctx context.Context, cfg *Config, opts *RunOptions) error {
	c, err := cfg.Resolve()
	if err != nil {
		return err
	}
	var o RunOptions
	if opts != nil {
		o = *opts
	}
	out := o.Stdout
	if out == nil {
		out = io.Discard
	}
	logger := o.Logger
	if logger == nil {
		level := slog.LevelWarn
		if c.LogLevel == "info" {
			level = slog.LevelInfo
		}
		logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	}

	t, err := OpenTable(ctx, c.Table)
	if err != nil {
		return err
	}
	defer t.Close()
	q, err := stream.OpenQueue(ctx, c.Queue)
	if err != nil {
		return fmt.Errorf("%w: queue: %w", ErrInvalidConfig, err)
	}
	defer CloseQueue(q, logger)

	metrics := server.NewMetrics()
	var reads *server.Outputs
	if c.Outputs != "" {
		// Each output table is served at the version the registry (PREFIX/models) marks live.
		pick := registry.NewPicker(c.Outputs).Pick
		if reads, err = server.NewOutputs(c.Outputs, &server.OutputsOptions{Poll: c.OutputsPoll.D(), Events: t.URI(), Logger: logger, Pick: pick, OnSwap: metrics.ObserveSwap}); err != nil {
			return err
		}
		defer reads.Close()
		// Load what is there before listening, so the first answers do not wait for a poll.
		if err := reads.Refresh(ctx); err != nil {
			logger.Warn("loading the job outputs", "prefix", c.Outputs, "err", err)
		}
	}

	// After a job registers, what went live is loaded at once rather than at the next poll: a
	// kick (coalesced, never blocking the job) for the refresher started with the read APIs.
	var served func(context.Context)
	kick := make(chan struct{}, 1)
	if reads != nil {
		served = func(context.Context) {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}
	tasks := buildTasks(ctx, c, t, logger, o.Progress, served)
	var sched *Scheduler
	if len(tasks) > 0 {
		if sched, err = NewScheduler(tasks, &SchedulerOptions{
			RetryInitial: c.Retry.Initial.D(), RetryMax: c.Retry.Max.D(), Clock: o.Clock, Jitter: o.Jitter,
			Logger: logger, Registerer: metrics.Registry(),
		}); err != nil {
			return err
		}
	}

	var lag atomic.Int64 // nanoseconds; -1: no commit yet
	lag.Store(-1)
	rl := *c.Server.RateLimit
	if rl == 0 {
		rl = -1 // off
	}
	so := &server.Options{
		WriteToken: c.Server.WriteToken, MaxBodyBytes: int64(c.Server.MaxBody), RateLimit: rl, AllowedOrigins: c.Server.AllowedOrigins,
		DemoSite: c.Server.DemoSite, Metrics: metrics, Logger: logger, BeforeSend: stream.BeforeSend,
		Reads: reads, ReadToken: c.Server.ReadToken, EventsTable: t.URI(),
		QueueLag: func() (time.Duration, bool) {
			v := lag.Load()
			return time.Duration(v), v >= 0
		},
	}
	if c.Outputs != "" {
		prefix := c.Outputs
		so.Models = func(ctx context.Context) (any, error) { return registry.NewReport(ctx, prefix) }
	}
	if sched != nil {
		so.Ops = func(context.Context) (any, error) { return sched.Report(), nil }
	}
	srv, err := server.New(q, so)
	if err != nil {
		return err
	}

	sub, err := q.Subscribe(ctx, 2*c.Committer.BatchRows)
	if err != nil {
		return err
	}
	var stats Stats
	cm, err := stream.New(ctx, t, sub, &stream.Options{
		Name: c.Committer.Name, BatchRows: c.Committer.BatchRows, BatchInterval: c.Committer.BatchInterval.D(),
		DrainOnStop: !q.Durable(), Logger: logger,
		OnCommit: func(b stream.BatchResult) {
			stats.Add(b)
			if b.Version >= 0 {
				lag.Store(int64(b.Lag))
			}
			metrics.ObserveCommit(server.CommitObservation{Committer: b.Committer, Version: b.Version,
				Committed: b.Written, Quarantined: b.Quarantined, Duplicate: b.Duplicate, Lag: b.Lag})
		},
	})
	if err != nil {
		return err
	}
	defer cm.Close()

	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", c.Server.Addr); err != nil {
			return fmt.Errorf("listen on %s: %w (is another server running there? choose another address)", c.Server.Addr, err)
		}
	}
	scheme := "http"
	if c.Server.TLSCert != "" {
		scheme = "https"
	}
	durable := "RabbitMQ, durable"
	if !q.Durable() {
		durable = "embedded, not durable"
	}
	fmt.Fprintf(out, "lake serve: listening on %s://%s (queue %s, %s; committer %q into %s)\n", scheme, ln.Addr(), q.URL(), durable, cm.Name(), t.URI())
	if c.Server.DemoSite {
		fmt.Fprintf(out, "lake serve: demo shop at %s://%s/demo/\n", scheme, ln.Addr())
	}
	if reads != nil {
		fmt.Fprintf(out, "lake serve: read APIs over %s (loaded: %s)\n", reads.Prefix(), VersionsLine(reads.Versions()))
	}
	for _, tk := range tasks {
		fmt.Fprintf(out, "lake serve: scheduled %s: %s\n", tk.Name, tk.Schedule)
	}

	// The committer runs until the HTTP server and the scheduler have stopped, so every event
	// the collector accepted is committed (mem://: drained) or left in the durable queue.
	sctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	cctx, stopCommitter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCommitter()
	cerr := make(chan error, 1)
	if reads != nil {
		readsDone := make(chan struct{})
		go func() { defer close(readsDone); reads.Run(sctx) }()
		kicked := make(chan struct{})
		go func() {
			defer close(kicked)
			for {
				select {
				case <-sctx.Done():
					return
				case <-kick:
					if err := reads.Refresh(sctx); err != nil && sctx.Err() == nil {
						logger.Warn("loading the job outputs after a run", "prefix", c.Outputs, "err", err)
					}
				}
			}
		}()
		defer func() { stopServing(); <-kicked }()
		defer func() { stopServing(); <-readsDone }() // before reads.Close
	}
	schedDone := make(chan struct{})
	if sched != nil {
		go func() { defer close(schedDone); sched.Run(sctx) }()
	} else {
		close(schedDone)
	}
	go func() {
		err := cm.Run(cctx)
		if err != nil {
			stopServing() // a committer that cannot commit should not take more events
		}
		cerr <- err
	}()
	if o.Started != nil {
		o.Started(ln.Addr(), sched)
	}
	serr := server.Serve(sctx, ln, srv, &server.ServeOptions{TLSCert: c.Server.TLSCert, TLSKey: c.Server.TLSKey, Logger: logger})
	stopServing()
	<-schedDone
	stopCommitter()
	err = <-cerr
	fmt.Fprintf(out, "lake serve: stopped; %s\n", &stats)
	return errors.Join(serr, err)
}

// VersionsLine renders the output versions loaded, e.g. "popular v3, similar_items v2".
func VersionsLine(v map[string]int64) string {
	if len(v) == 0 {
		return "none yet; the endpoints answer 503 until the jobs have run"
	}
	var s string
	for _, name := range []string{server.OutSimilar, server.OutRecs, server.OutTrend, server.OutPopular} {
		if ver, ok := v[name]; ok {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%s v%d", name, ver)
		}
	}
	return s
}

// buildTasks turns the jobs and maintenance of c into scheduler tasks.
func buildTasks(ctx context.Context, c *Config, t *table.Table, logger *slog.Logger, progress io.Writer, served func(context.Context)) []Task {
	var tasks []Task
	// afterRuns calls served after every run (or follow round) that did something.
	afterRuns := func(run func(context.Context, func(Result)) (Result, error)) func(context.Context, func(Result)) (Result, error) {
		if served == nil {
			return run
		}
		return func(ctx context.Context, note func(Result)) (Result, error) {
			r, err := run(ctx, func(r Result) {
				note(r)
				if !r.Skipped {
					served(ctx)
				}
			})
			if err == nil && !r.Skipped {
				served(ctx)
			}
			return r, err
		}
	}
	if a := c.Jobs.ALS; a != nil {
		at := &alsTask{cfg: a, source: t.URI(), prefix: c.Outputs, rows: newRowCounter(t), progress: progress, logger: logger}
		last, err := at.init(ctx)
		if err != nil {
			// Not fatal: the first run then waits for new_interactions rows or the first tick.
			logger.Warn("reading the model registry for the ALS schedule; counting new interactions from zero", "registry", registry.URI(c.Outputs), "err", err)
		}
		tk := Task{Name: TaskALS, Schedule: at.schedule(), Every: a.Every.D(), Last: last, Run: afterRuns(at.run)}
		if a.NewInteractions > 0 {
			tk.Due, tk.Poll = at.due, a.Poll.D()
		}
		tasks = append(tasks, tk)
	}
	if tc := c.Jobs.Trending; tc != nil {
		tt := &trendingTask{cfg: tc, source: t.URI(), prefix: c.Outputs, progress: progress, logger: logger}
		tk := Task{Name: TaskTrending, Schedule: tt.schedule()}
		if tc.Follow {
			tk.Continuous, tk.Run = true, afterRuns(tt.follow)
		} else {
			tk.Every, tk.Run = tc.Every.D(), afterRuns(tt.batch)
		}
		tasks = append(tasks, tk)
	}
	if oc := c.Maintenance.Optimize; oc != nil {
		ot := &optimizeTask{cfg: oc, table: t.URI()}
		tasks = append(tasks, Task{Name: TaskOptimize, Schedule: "every " + oc.Every.String() + " on " + t.URI(), Every: oc.Every.D(), Run: ot.run})
	}
	if vc := c.Maintenance.Vacuum; vc != nil {
		vt := &vacuumTask{cfg: vc, table: t.URI(), prefix: c.Outputs}
		what := t.URI()
		if *vc.Outputs && c.Outputs != "" {
			what += " and the job outputs"
		}
		retain := "the table's retention"
		if vc.Retain > 0 {
			retain = vc.Retain.String()
		}
		tasks = append(tasks, Task{Name: TaskVacuum, Schedule: fmt.Sprintf("every %v on %s (retain %s)", vc.Every, what, retain), Every: vc.Every.D(), Run: vt.run})
	}
	return tasks
}

// EnvTokens fills the tokens c leaves empty from $LAKE_WRITE_TOKEN and $LAKE_READ_TOKEN.
func (c *Config) EnvTokens() {
	if c.Server.WriteToken == "" {
		c.Server.WriteToken = os.Getenv("LAKE_WRITE_TOKEN")
	}
	if c.Server.ReadToken == "" {
		c.Server.ReadToken = os.Getenv("LAKE_READ_TOKEN")
	}
}
