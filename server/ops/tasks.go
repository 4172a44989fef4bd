package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lakehouse/lake/compaction"
	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
	"github.com/lakehouse/lake/registry"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer/source"
)

// Task names.
const (
	TaskALS      = "als"
	TaskTrending = "trending"
	TaskOptimize = "optimize"
	TaskVacuum   = "vacuum"
)

// rowCounter counts the rows of a table from the numRecords statistics of its snapshot's add
// actions (minus deletion vectors): no data file is read, and each file's statistics are parsed
// once. Safe for concurrent use.
type rowCounter struct {
	t *table.Table

	mu      sync.Mutex
	snap    *txlog.Snapshot
	perFile map[string]int64
}

func newRowCounter(t *table.Table) *rowCounter {
	return &rowCounter{t: t, perFile: map[string]int64{}}
}

// latest returns the latest version and its row count, reading only the commits since the
// last call.
func (c *rowCounter) latest(ctx context.Context) (version, rows int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var snap *txlog.Snapshot
	if c.snap == nil {
		snap, err = c.t.Snapshot(ctx)
	} else {
		snap, err = c.t.Update(ctx, c.snap)
	}
	if err != nil {
		return 0, 0, err
	}
	c.snap = snap
	return snap.Version(), c.countLocked(snap), nil
}

// at returns the row count of version.
func (c *rowCounter) at(ctx context.Context, version int64) (int64, error) {
	snap, err := c.t.SnapshotAt(ctx, version)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.countLocked(snap), nil
}

func (c *rowCounter) countLocked(snap *txlog.Snapshot) int64 {
	if len(c.perFile) > 2*snap.NumFiles()+1024 {
		c.perFile = map[string]int64{} // forget the files compacted or vacuumed away
	}
	var n int64
	snap.ScanFiles(func(a *txlog.Add) bool { // a is valid only here: keys are cloned
		r, ok := c.perFile[a.Path]
		if !ok {
			r, _ = a.NumRecords()
			c.perFile[strings.Clone(a.Path)] = r
		}
		if a.DeletionVector != nil {
			r -= a.DeletionVector.Cardinality
		}
		n += max(r, 0)
		return true
	})
	return n
}

// alsTask retrains ALS on the events table into the outputs, registered and gated.
type alsTask struct {
	cfg      *ALSConfig
	source   string
	prefix   string
	rows     *rowCounter
	progress io.Writer
	logger   *slog.Logger
	now      func() time.Time

	mu       sync.Mutex
	baseRows int64 // rows at the source version of the last ALS run (0: none)

	// pending is a run whose outputs are committed but whose registration failed: the next
	// attempt registers it instead of running the job again (which would find its outputs
	// there and skip, leaving the run unregistered).
	pending     *jobs.ALSJobResult
	pendingRows int64
}

// init reads the last ALS run from the registry: its source version's row count is the
// baseline of new_interactions, and when it ran starts the timer.
func (a *alsTask) init(ctx context.Context) (last time.Time, err error) {
	st, err := registry.Load(ctx, a.prefix)
	if errors.Is(err, registry.ErrNoRegistry) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	var lastRun *registry.Run
	for _, r := range st.Runs { // newest registration first
		if r.Job == registry.JobALS && (lastRun == nil || r.CreatedAt.After(lastRun.CreatedAt)) {
			lastRun = r
		}
	}
	if lastRun == nil {
		return time.Time{}, nil
	}
	n, err := a.rows.at(ctx, lastRun.SourceVersion)
	if err != nil {
		// The version left the log (log clean-up): count from now on.
		a.logger.Warn("the source version of the last ALS run cannot be read; counting new interactions from the latest version",
			"run", lastRun.RunID, "version", lastRun.SourceVersion, "err", err)
		if _, n, err = a.rows.latest(ctx); err != nil {
			return time.Time{}, err
		}
	}
	a.baseRows = n
	return lastRun.CreatedAt, nil
}

func (a *alsTask) schedule() string {
	var parts []string
	if a.cfg.Every > 0 {
		parts = append(parts, "every "+a.cfg.Every.String())
	}
	if a.cfg.NewInteractions > 0 {
		parts = append(parts, fmt.Sprintf("when %d new interactions arrived (checked every %v)", a.cfg.NewInteractions, a.cfg.Poll))
	}
	return strings.Join(parts, " or ") + ", whichever comes first"
}

// due: the table holds at least NewInteractions rows more than at the last run's source version.
func (a *alsTask) due(ctx context.Context) (bool, error) {
	_, n, err := a.rows.latest(ctx)
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return n-a.baseRows >= a.cfg.NewInteractions, nil
}

func (a *alsTask) run(ctx context.Context, _ func(Result)) (Result, error) {
	tol := *a.cfg.GateTolerance
	ro := &registry.Options{GateTolerance: &tol, Now: a.now}
	if res := a.pending; res != nil {
		run, err := registry.RegisterALS(ctx, a.prefix, res, ro)
		if err != nil {
			return Result{}, fmt.Errorf("%w: %w", registry.ErrNotRegistered, err)
		}
		a.pending = nil
		return a.done(res, run, a.pendingRows), nil
	}
	v, n, err := a.rows.latest(ctx)
	if err != nil {
		return Result{}, err
	}
	if n == 0 {
		return Result{Skipped: true, Summary: fmt.Sprintf("the events table is empty at version %d: nothing to train on", v)}, nil
	}
	c := a.cfg
	w := map[string]float32{}
	for k, x := range c.Weights {
		w[k] = float32(x)
	}
	opts := &jobs.ALSJobOptions{
		Source: a.source, SourceVersion: v, Output: a.prefix,
		ALS: jobs.ALSOptions{Factors: c.Factors, Iterations: c.Iterations, Alpha: float32(c.Alpha), Lambda: float32(c.Lambda),
			Seed: c.Seed, Solver: c.Solver, CGSteps: c.CGSteps},
		Weights: w, WeightByValue: c.WeightByValue, HalfLife: c.HalfLife.D(), Top: c.Top,
		NoEval: c.NoEval, EvalUsers: c.EvalUsers, Progress: a.progress,
	}
	res, run, err := registry.RunALS(ctx, a.prefix, opts, ro)
	if err != nil {
		if res != nil && errors.Is(err, registry.ErrNotRegistered) {
			a.pending, a.pendingRows = res, n
		}
		return Result{}, err
	}
	return a.done(res, run, n), nil
}

// done records a finished run (n: the rows of its source version) and describes it.
func (a *alsTask) done(res *jobs.ALSJobResult, run *registry.Run, n int64) Result {
	a.mu.Lock()
	a.baseRows = n
	a.mu.Unlock()
	if res.Skipped || run == nil {
		return Result{Skipped: true, Summary: fmt.Sprintf("the outputs already hold source version %d", res.SourceVersion)}
	}
	sum := fmt.Sprintf("trained on source version %d (%d rows, %d users, %d items); run %s is %s", res.SourceVersion, res.SourceRows, res.Users, res.Items, run.RunID, run.Status)
	if run.Status != registry.StatusLive {
		sum += ": " + run.Reason
	}
	return Result{Summary: sum, RunID: run.RunID, RunStatus: run.Status}
}

// trendingTask runs trending, following the table or as batch runs.
type trendingTask struct {
	cfg      *TrendingConfig
	source   string
	prefix   string
	progress io.Writer
	logger   *slog.Logger
	now      func() time.Time

	pending *trending.Result // committed by a batch run, not registered (see alsTask.pending)
}

func (t *trendingTask) options() *trending.Options {
	c := t.cfg
	origin, _ := time.Parse(time.RFC3339, c.Origin) // checked by Resolve
	p := trending.Params{Window: c.Window.D(), Origin: origin, Lateness: c.Lateness.D(), Threshold: c.Threshold,
		MinCount: c.MinCount, Top: c.Top, Weights: cloneMap(c.Weights), Types: c.Types, Count: c.Count}
	return &trending.Options{Source: t.source, SourceVersion: -1, Output: t.prefix, Params: p, Progress: t.progress}
}

func (t *trendingTask) schedule() string {
	if t.cfg.Follow {
		return fmt.Sprintf("follows the table continuously (polls every %v; windows of %v)", t.cfg.Poll, t.cfg.Window)
	}
	return fmt.Sprintf("every %v (windows of %v)", t.cfg.Every, t.cfg.Window)
}

func (t *trendingTask) follow(ctx context.Context, note func(Result)) (Result, error) {
	fo := &trending.FollowOptions{Options: *t.options(), Poll: t.cfg.Poll.D()}
	fo.OnCommit = func(sv int64, windows []trending.Window, outs []trending.OutputResult) {
		r := Result{Summary: fmt.Sprintf("committed %d windows from source version %d", len(windows), sv)}
		run, err := registry.RegisterTrending(ctx, t.prefix, sv, outs, &registry.Options{Now: t.now})
		if err != nil {
			// Keep following: the next round registers its own versions.
			t.logger.Warn("trending committed windows but registering the run failed", "source_version", sv, "err", err)
			r.Summary += "; registering the run failed: " + err.Error()
		} else if run != nil {
			r.RunID, r.RunStatus = run.RunID, run.Status
		}
		note(r)
	}
	return Result{}, trending.Follow(ctx, fo)
}

func (t *trendingTask) batch(ctx context.Context, _ func(Result)) (Result, error) {
	ro := &registry.Options{Now: t.now}
	var res *trending.Result
	var run *registry.Run
	var err error
	if res = t.pending; res != nil {
		if run, err = registry.RegisterTrending(ctx, t.prefix, res.SourceVersion, res.Outputs, ro); err != nil {
			return Result{}, fmt.Errorf("%w: %w", registry.ErrNotRegistered, err)
		}
		t.pending = nil
	} else if res, run, err = registry.RunTrending(ctx, t.options(), ro); err != nil {
		if res != nil && errors.Is(err, registry.ErrNotRegistered) {
			t.pending = res
		}
		return Result{}, err
	}
	if res.Windows == 0 || res.UpToDate || run == nil {
		return Result{Skipped: true, Summary: fmt.Sprintf("no new closed window at source version %d", res.SourceVersion)}, nil
	}
	return Result{Summary: fmt.Sprintf("source version %d: %d closed windows, %d trending rows", res.SourceVersion, res.Windows, res.Flagged),
		RunID: run.RunID, RunStatus: run.Status}, nil
}

// optimizeTask compacts the events table.
type optimizeTask struct {
	cfg   *OptimizeConfig
	table string
}

func (o *optimizeTask) run(ctx context.Context, _ func(Result)) (Result, error) {
	t, err := table.Open(ctx, o.table, nil)
	if err != nil {
		return Result{}, err
	}
	defer t.Close()
	res, err := compaction.Optimize(ctx, t, &compaction.OptimizeOptions{TargetSize: int64(o.cfg.TargetSize), ZOrderBy: o.cfg.ZOrderBy})
	if err != nil {
		return Result{}, err
	}
	if len(res.Versions) == 0 {
		return Result{Skipped: true, Summary: fmt.Sprintf("nothing to optimize (%d files considered)", res.FilesConsidered)}, nil
	}
	return Result{Summary: fmt.Sprintf("removed %d files, added %d (%d rows) in versions %v", res.FilesRemoved, res.FilesAdded, res.Rows, res.Versions)}, nil
}

// vacuumTask vacuums the events table, its quarantine table and the job outputs.
type vacuumTask struct {
	cfg    *VacuumConfig
	table  string
	prefix string
	now    func() time.Time
}

// outputTables are the job outputs vacuum visits.
var outputTables = []string{jobs.OutItemFactors, jobs.OutSimilarItems, jobs.OutUserRecommendations, trending.OutTrending, trending.OutPopular}

func (v *vacuumTask) run(ctx context.Context, _ func(Result)) (Result, error) {
	var deleted, logDeleted int
	var bytes int64
	one := func(uri string, keep []int64) error {
		t, err := table.Open(ctx, uri, nil)
		if errors.Is(err, txlog.ErrNotATable) {
			return nil
		}
		if err != nil {
			return err
		}
		defer t.Close()
		res, err := compaction.Vacuum(ctx, t, &compaction.VacuumOptions{Retention: v.cfg.Retain.D(), Force: v.cfg.Force, KeepVersions: keep, Now: v.now})
		if errors.Is(err, txlog.ErrNotATable) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("vacuum %s: %w", uri, err)
		}
		deleted += len(res.Deleted)
		bytes += res.Bytes
		if *v.cfg.LogCleanup {
			lr, err := compaction.CleanupLog(ctx, t, &compaction.CleanupOptions{Now: v.now})
			if err != nil {
				return fmt.Errorf("clean up the log of %s: %w", uri, err)
			}
			logDeleted += len(lr.Deleted)
		}
		return nil
	}
	if err := one(v.table, nil); err != nil {
		return Result{}, err
	}
	tables := 1
	// The quarantine keeps raw records (user ids among them): erasing a user reaches it too.
	if q, err := source.QuarantineURI(v.table); err == nil {
		if err := one(q, nil); err != nil {
			return Result{}, err
		}
		tables++
	}
	if *v.cfg.Outputs && v.prefix != "" {
		for _, name := range outputTables {
			// The versions the registry serves or rolls back to stay readable.
			pinned, err := registry.PinnedVersions(ctx, v.prefix, name)
			if err != nil {
				return Result{}, fmt.Errorf("read the model registry %s: %w", registry.URI(v.prefix), err)
			}
			if err := one(jobs.ChildURI(v.prefix, name), pinned); err != nil {
				return Result{}, err
			}
			tables++
		}
	}
	r := Result{Summary: fmt.Sprintf("%d tables: deleted %d files (%.1f MiB) and %d log files", tables, deleted, float64(bytes)/(1<<20), logDeleted)}
	r.Skipped = deleted == 0 && logDeleted == 0
	return r, nil
}
