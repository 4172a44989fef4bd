package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// Options configure registry changes. A nil *Options is the defaults.
type Options struct {
	// GateTolerance is how much lower (absolute) a new ALS run's recall@10 may be than the live
	// run's and still go live (nil: DefaultGateTolerance; 0: no worse at all; negative: the new
	// run must beat the live one by at least its absolute value).
	GateTolerance *float64
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Tolerance returns a GateTolerance of v.
func Tolerance(v float64) *float64 { return &v }

// options are Options with the defaults filled in.
type options struct {
	tolerance float64
	now       func() time.Time
}

func (o *Options) withDefaults() options {
	c := options{tolerance: DefaultGateTolerance, now: time.Now}
	if o == nil {
		return c
	}
	if o.GateTolerance != nil {
		c.tolerance = *o.GateTolerance
	}
	if o.Now != nil {
		c.now = o.Now
	}
	return c
}

// Registration is a finished run to register.
type Registration struct {
	Job           string // JobALS or JobTrending
	Source        string
	SourceVersion int64
	Parameters    map[string]any
	Outputs       map[string]int64 // output table name -> the version the run committed
	Metrics       map[string]any   // for ALS: MetricRecall (float64) when evaluated
	Evaluated     bool             // ALS: the run measured held-out recall@10
}

// MinBaselineUsers is the fewest users the live model must have been scored on, on a new ALS
// run's split, for the gate to compare on that split; with fewer (too noisy) it compares the
// recorded recalls.
const MinBaselineUsers = 20

// Register records a run and applies the gate (see the package comment): it returns the run
// as registered, with its status and reason.
//
// For an evaluated ALS run, when its metrics["baseline"] holds the current live run scored on
// the new run's held-out split (jobs.BaselineResult, as RunALS records it; at least
// MinBaselineUsers users), the gate compares the two models on that split: the new run goes live
// when its candidate_recall@10 is at least the live run's recall@10 there minus the tolerance,
// and the reason says "both on this run's split". Otherwise (no baseline, one of another run, or
// the live model was trained on every held-out interaction) it compares the recalls each run
// recorded on its own split, and the reason says "as recorded".
func Register(ctx context.Context, prefix string, reg *Registration, opts *Options) (*Run, error) {
	o := opts.withDefaults()
	if reg.Job != JobALS && reg.Job != JobTrending {
		return nil, fmt.Errorf("registry: unknown job %q", reg.Job)
	}
	now := o.now().UTC()
	run := &Run{RunID: NewRunID(reg.Job, now), Job: reg.Job, Action: ActionRegister, CreatedAt: now,
		Source: reg.Source, SourceVersion: reg.SourceVersion, Parameters: reg.Parameters, Outputs: reg.Outputs, Metrics: reg.Metrics}
	var out *Run
	err := update(ctx, prefix, o.now, func(st *State) ([]*Run, error) {
		r := *run
		live := st.Live(reg.Job)
		recall, hasRecall := r.Recall()
		switch {
		case reg.Job == JobTrending:
			r.Status, r.Reason = StatusLive, "trending runs go live directly"
		case !reg.Evaluated || !hasRecall:
			r.Status, r.Reason = StatusCandidate, "not evaluated (--no-eval): stays a candidate until promoted (`lake models promote`)"
		case live == nil:
			r.Status, r.Reason = StatusLive, fmt.Sprintf("first evaluated run: recall@10 %.4f", recall)
		default:
			if cr, br, users, ok := baselineRecall(r.Metrics, live.RunID); ok && users >= MinBaselineUsers {
				// Both models scored on this run's split: the same users, the same held-out items
				// (those newer than the live model's data).
				on := fmt.Sprintf("both on this run's split (%d users' held-out items newer than the live model's data)", users)
				if cr >= br-o.tolerance {
					r.Status, r.Reason = StatusLive, fmt.Sprintf("recall@10 %.4f vs live run %s's %.4f, %s: within the tolerance %.4f", cr, live.RunID, br, on, o.tolerance)
				} else {
					r.Status, r.Reason = StatusRejected, fmt.Sprintf("recall@10 %.4f is below live run %s's %.4f, %s, by %.4f, more than the tolerance %.4f", cr, live.RunID, br, on, br-cr, o.tolerance)
				}
				break
			}
			lr, ok := live.Recall()
			switch {
			case !ok:
				r.Status, r.Reason = StatusLive, fmt.Sprintf("recall@10 %.4f; the live run %s has no recorded recall@10 to compare with", recall, live.RunID)
			case recall >= lr-o.tolerance:
				r.Status, r.Reason = StatusLive, fmt.Sprintf("recall@10 %.4f vs live run %s's %.4f as recorded, each on its own split (the live model was not compared on this run's split): within the tolerance %.4f", recall, live.RunID, lr, o.tolerance)
			default:
				r.Status, r.Reason = StatusRejected, fmt.Sprintf("recall@10 %.4f is below live run %s's %.4f as recorded, each on its own split (the live model was not compared on this run's split), by %.4f, more than the tolerance %.4f", recall, live.RunID, lr, lr-recall, o.tolerance)
			}
		}
		rows := []*Run{&r}
		if r.Status == StatusLive && live != nil {
			rows = append(rows, live.with(ActionSupersede, StatusRetired, "superseded by "+r.RunID))
		}
		out = &r
		return rows, nil
	})
	if err != nil {
		return nil, fmt.Errorf("register the %s run in %s: %w", reg.Job, URI(prefix), err)
	}
	return out, nil
}

// Promote makes run live by hand (a candidate, a rejected or a retired run); the job's live run
// is retired. It returns the promoted run.
func Promote(ctx context.Context, prefix, runID string, opts *Options) (*Run, error) {
	o := opts.withDefaults()
	var out *Run
	err := update(ctx, prefix, o.now, func(st *State) ([]*Run, error) {
		r := st.Run(runID)
		if r == nil {
			return nil, fmt.Errorf("%w %q in %s (`lake models list %s` lists the runs)", ErrUnknownRun, runID, URI(prefix), prefix)
		}
		if r.Status == StatusLive {
			return nil, fmt.Errorf("%w: %s is already live", ErrBadState, runID)
		}
		live := st.Live(r.Job)
		reason := "promoted by hand from " + r.Status
		if live != nil {
			reason += ", replacing " + live.RunID
		}
		rows := []*Run{r.with(ActionPromote, StatusLive, reason)}
		if live != nil {
			rows = append(rows, live.with(ActionSupersede, StatusRetired, "superseded by "+runID+" (promoted by hand)"))
		}
		out = rows[0]
		return rows, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Rollback retires the live run of job and makes the previous live run live again. It returns
// the run now live and the one retired.
func Rollback(ctx context.Context, prefix, job string, opts *Options) (live, retired *Run, err error) {
	o := opts.withDefaults()
	err = update(ctx, prefix, o.now, func(st *State) ([]*Run, error) {
		cur := st.Live(job)
		if cur == nil {
			return nil, fmt.Errorf("%w: no %s run is live in %s", ErrNoRollbackTarget, job, URI(prefix))
		}
		target := st.RollbackTarget(job)
		if target == nil {
			return nil, fmt.Errorf("%w: %s run %s is the first live %s run in %s", ErrNoRollbackTarget, job, cur.RunID, job, URI(prefix))
		}
		live = target.with(ActionRollback, StatusLive, "live again: rollback from "+cur.RunID)
		retired = cur.with(ActionRollback, StatusRetired, "rolled back to "+target.RunID)
		return []*Run{retired, live}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return live, retired, nil
}

// Redact records that rows were deleted for good from the output table name, which is now at
// version to (`lake delete` on an output, to erase a user): the live run that names name serves
// version to from now on, and every other run that names an older version of it is retired and
// no longer a rollback target (its entry for name is dropped), so that vacuum may delete the files
// that still hold the rows. It returns the rows written; without a registry it does nothing.
func Redact(ctx context.Context, prefix, name string, to int64, opts *Options) ([]*Run, error) {
	o := opts.withDefaults()
	if _, err := Load(ctx, prefix); errors.Is(err, ErrNoRegistry) {
		return nil, nil
	}
	var out []*Run
	err := update(ctx, prefix, o.now, func(st *State) ([]*Run, error) {
		out = nil
		for _, r := range st.Runs {
			v, ok := r.Outputs[name]
			if !ok || v >= to {
				continue
			}
			outputs := maps.Clone(r.Outputs)
			var c *Run
			if r.Status == StatusLive {
				c = r.with(ActionRedact, StatusLive, fmt.Sprintf("%s now at version %d (rows deleted for good from version %d)", name, to, v))
				outputs[name] = to
			} else {
				c = r.with(ActionRedact, StatusRetired, fmt.Sprintf("version %d of %s held rows since deleted for good: no longer served or a rollback target", v, name))
				delete(outputs, name)
			}
			c.Outputs = outputs
			out = append(out, c)
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PinnedVersions returns the versions of the output table name that the registry under prefix
// still needs: those of the live runs and of the rollback targets. Without a registry it
// returns nil and no error.
func PinnedVersions(ctx context.Context, prefix, name string) ([]int64, error) {
	st, err := Load(ctx, prefix)
	if errors.Is(err, ErrNoRegistry) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := map[int64]bool{}
	var out []int64
	add := func(r *Run) {
		if r == nil {
			return
		}
		if v, ok := r.Outputs[name]; ok && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, job := range []string{JobALS, JobTrending} {
		add(st.Live(job))
		add(st.RollbackTarget(job))
	}
	return out, nil
}

// RegisterALS registers a finished `lake als` run from its result; the parameters and metrics
// are read back from the lineage its outputs' commits carry. A skipped run (nothing written)
// registers nothing and returns nil.
func RegisterALS(ctx context.Context, prefix string, res *jobs.ALSJobResult, opts *Options) (*Run, error) {
	if res == nil || res.Skipped {
		return nil, nil
	}
	reg := &Registration{Job: JobALS, SourceVersion: res.SourceVersion, Outputs: map[string]int64{}, Metrics: map[string]any{}}
	var lineageOf *jobs.OutputResult
	for i, o := range res.Outputs {
		reg.Outputs[o.Name] = o.Version
		if !o.Skipped && lineageOf == nil {
			lineageOf = &res.Outputs[i]
		}
	}
	if lineageOf != nil {
		if err := readLineage(ctx, lineageOf.URI, lineageOf.Version, reg); err != nil {
			return nil, err
		}
	}
	delete(reg.Metrics, "eval")
	if ev := res.Eval; ev != nil {
		reg.Evaluated = true
		reg.Metrics[MetricRecall] = ev.ALS.Recall
		reg.Metrics[MetricNDCG] = ev.ALS.NDCG
		reg.Metrics["popularity_"+MetricRecall] = ev.Popularity.Recall
		reg.Metrics["popularity_"+MetricNDCG] = ev.Popularity.NDCG
		reg.Metrics["item_knn_"+MetricRecall] = ev.ItemKNN.Recall
		reg.Metrics["item_knn_"+MetricNDCG] = ev.ItemKNN.NDCG
		reg.Metrics["eval_users"] = float64(ev.Users)
	}
	reg.Metrics["users"], reg.Metrics["items"] = float64(res.Users), float64(res.Items)
	// The lineage carries these too; set them from the result so that a run whose commit has
	// left the log still registers them, in the form Load returns (decoded JSON).
	for k, v := range map[string]any{jobs.MetricBaseline: res.Baseline, jobs.MetricDrift: res.Drift,
		jobs.MetricTypeMix: res.TypeMix, jobs.MetricTopItems: res.TopItems} {
		if !isNil(v) {
			reg.Metrics[k] = decoded(v)
		}
	}
	return Register(ctx, prefix, reg, opts)
}

// RegisterTrending registers a `lake trending` run (a batch run, or one round of --follow)
// from the outputs it committed; a run that wrote nothing registers nothing and returns nil.
func RegisterTrending(ctx context.Context, prefix string, sourceVersion int64, outs []trending.OutputResult, opts *Options) (*Run, error) {
	reg := &Registration{Job: JobTrending, SourceVersion: sourceVersion, Outputs: map[string]int64{}, Metrics: map[string]any{}}
	var lineageOf *trending.OutputResult
	for i, o := range outs {
		if o.Version < 0 {
			continue
		}
		reg.Outputs[o.Name] = o.Version
		if !o.Skipped && lineageOf == nil {
			lineageOf = &outs[i]
		}
	}
	if lineageOf == nil {
		return nil, nil
	}
	if err := readLineage(ctx, lineageOf.URI, lineageOf.Version, reg); err != nil {
		return nil, err
	}
	return Register(ctx, prefix, reg, opts)
}

// readLineage fills reg's source, parameters and metrics from the commitInfo of version of the
// output table at uri (the job's lineage).
func readLineage(ctx context.Context, uri string, version int64, reg *Registration) error {
	t, err := table.Open(ctx, uri, nil)
	if err != nil {
		return err
	}
	defer t.Close()
	h, err := t.History(ctx, 32)
	if err != nil {
		return err
	}
	for _, e := range h {
		if e.Version != version || e.CommitInfo == nil {
			continue
		}
		p := e.CommitInfo.OperationParameters
		if s, ok := p["source"].(string); ok {
			reg.Source = s
		}
		if s, ok := p["sourceVersion"].(string); ok {
			if v, err := strconv.ParseInt(s, 10, 64); err == nil {
				reg.SourceVersion = v
			}
		}
		if s, ok := p["parameters"].(string); ok {
			_ = json.Unmarshal([]byte(s), &reg.Parameters)
		}
		if s, ok := p["metrics"].(string); ok {
			var m map[string]any
			if json.Unmarshal([]byte(s), &m) == nil {
				for k, v := range m {
					reg.Metrics[k] = v
				}
			}
		}
		return nil
	}
	return nil // the commit is no longer in the log: register without its lineage
}

// Picker chooses the version of each output table to serve from the registry: the version the
// live run names. Without a registry, or for a table no registered run names (outputs written
// before the registry existed), it serves the latest version; when runs name the table but none
// is live (only candidates or rejected runs), it returns ErrNoLiveRun and serves nothing new.
// Its Pick method has the signature of server.PickVersion.
type Picker struct {
	prefix string
}

// NewPicker returns a Picker for the outputs under prefix.
func NewPicker(prefix string) *Picker { return &Picker{prefix: prefix} }

// Pick returns the snapshot of t (the output table called name) to serve.
func (p *Picker) Pick(ctx context.Context, name string, t *table.Table) (*txlog.Snapshot, error) {
	st, err := Load(ctx, p.prefix)
	if errors.Is(err, ErrNoRegistry) {
		return t.Snapshot(ctx)
	}
	if err != nil {
		return nil, err
	}
	live, named := st.liveFor(name)
	switch {
	case live != nil:
		snap, err := t.SnapshotAt(ctx, live.Outputs[name])
		if err != nil {
			return nil, fmt.Errorf("live run %s names %s version %d: %w", live.RunID, name, live.Outputs[name], err)
		}
		return snap, nil
	case named:
		return nil, fmt.Errorf("%w names %s in %s: promote a candidate with `lake models promote %s RUN_ID`", ErrNoLiveRun, name, URI(p.prefix), p.prefix)
	}
	return t.Snapshot(ctx)
}

// Report is the registry as GET /v1/models answers it.
type Report struct {
	Prefix     string          `json:"prefix"`
	Version    int64           `json:"version"` // the registry table's version; -1: no registry yet
	Live       map[string]*Run `json:"live"`    // by job
	Candidates []*Run          `json:"candidates"`
	Runs       []*Run          `json:"runs"` // every run's current state, newest first
}

// NewReport reads the registry under prefix into a Report; without a registry it is empty.
func NewReport(ctx context.Context, prefix string) (*Report, error) {
	rep := &Report{Prefix: prefix, Version: -1, Live: map[string]*Run{}, Candidates: []*Run{}, Runs: []*Run{}}
	st, err := Load(ctx, prefix)
	if errors.Is(err, ErrNoRegistry) {
		return rep, nil
	}
	if err != nil {
		return nil, err
	}
	rep.Version, rep.Runs = st.Version, st.Runs
	for _, r := range st.Runs {
		switch r.Status {
		case StatusLive:
			rep.Live[r.Job] = r
		case StatusCandidate:
			rep.Candidates = append(rep.Candidates, r)
		}
	}
	return rep, nil
}

// outputNames are the output tables the jobs register.
var outputNames = map[string]bool{
	jobs.OutItemFactors: true, jobs.OutSimilarItems: true, jobs.OutUserRecommendations: true,
	trending.OutTrending: true, trending.OutPopular: true,
}

// SplitOutputURI splits the URI of a job's output table into its outputs prefix and its name
// (the inverse of jobs.ChildURI, keeping the query string); ok is false when the URI's last path
// element is not the name of an output the jobs register.
func SplitOutputURI(uri string) (prefix, name string, ok bool) {
	base, query, hasQuery := strings.Cut(uri, "?")
	base = strings.TrimRight(base, "/")
	i := strings.LastIndex(base, "/")
	if i < 0 {
		prefix, name = ".", base
	} else {
		prefix, name = base[:i], base[i+1:]
	}
	if !outputNames[name] || prefix == "" || strings.HasSuffix(prefix, ":/") { // ":/": a bucket root such as mem://similar_items
		return "", "", false
	}
	if hasQuery {
		prefix += "?" + query
	}
	return prefix, name, true
}

// baselineRecall reads the run's metrics["baseline"]: the recall@10 of this run's model and of
// the live run liveID, both on this run's split, and the users scored; false when the run was not
// compared with that run (no baseline, or one taken from a run that is no longer live).
func baselineRecall(metrics map[string]any, liveID string) (candidate, live float64, users int, ok bool) {
	b, ok := metrics[jobs.MetricBaseline].(map[string]any)
	if !ok || b["run_id"] != liveID {
		return 0, 0, 0, false
	}
	live, ok1 := b[MetricRecall].(float64)
	candidate, ok2 := b["candidate_"+MetricRecall].(float64)
	n, _ := b["users"].(float64)
	return candidate, live, int(n), ok1 && ok2
}

// decoded is v as JSON decodes it (maps as map[string]any, numbers as float64).
func decoded(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	return out
}

func isNil(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case *jobs.BaselineResult:
		return x == nil
	case *jobs.Drift:
		return x == nil
	case map[string]float64:
		return x == nil
	case []string:
		return x == nil
	}
	return false
}
