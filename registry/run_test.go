package registry

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
)

// TestGateBaseline: with the live model scored on the new run's split the gate compares those
// two numbers, whatever the recorded recalls say; a baseline of another run is ignored.
func TestGateBaseline(t *testing.T) {
	prefix := t.TempDir()
	a := mustRegister(t, prefix, als(0.30, true, 1))
	withBaseline := func(recall float64, liveID string, live, candidate float64) *Registration {
		r := als(recall, true, 2)
		r.Metrics[jobs.MetricBaseline] = map[string]any{"run_id": liveID, MetricRecall: live, "candidate_" + MetricRecall: candidate, "users": 40.0}
		return r
	}
	// Recorded 0.40 beats the live run's recorded 0.30, but on this split the live model wins.
	b := mustRegister(t, prefix, withBaseline(0.40, a.RunID, 0.50, 0.40))
	if b.Status != StatusRejected || !strings.Contains(b.Reason, "both on this run's split") || !strings.Contains(b.Reason, "0.5000") {
		t.Fatalf("worse on this split: %s (%s)", b.Status, b.Reason)
	}
	// Recorded 0.10 is far below 0.30, but on this split it is as good as the live model.
	c := mustRegister(t, prefix, withBaseline(0.10, a.RunID, 0.30, 0.31))
	if c.Status != StatusLive || !strings.Contains(c.Reason, "both on this run's split") {
		t.Fatalf("as good on this split: %s (%s)", c.Status, c.Reason)
	}
	// A baseline taken from a run that is no longer live: the recorded recalls decide.
	d := mustRegister(t, prefix, withBaseline(0.05, a.RunID, 0.01, 0.99))
	if d.Status != StatusRejected || !strings.Contains(d.Reason, "as recorded") {
		t.Fatalf("stale baseline: %s (%s)", d.Status, d.Reason)
	}
}

// splitDataset writes the first frac of d's events (they are sorted by time) to a new
// interaction table at uri and returns the rest as a data set to append later.
func splitDataset(t *testing.T, uri string, d *jobs.Dataset, frac float64) *jobs.Dataset {
	t.Helper()
	cut := int(float64(len(d.Events)) * frac)
	head, tail := *d, *d
	head.Events, tail.Events = d.Events[:cut], d.Events[cut:]
	if _, err := jobs.WriteDataset(context.Background(), uri, &head); err != nil {
		t.Fatal(err)
	}
	return &tail
}

func TestRunALSGateAndDrift(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, prefix := filepath.Join(dir, "events"), filepath.Join(dir, "out")
	d, err := jobs.Generate(&jobs.GenOptions{Users: 300, Items: 150, Days: 4, Interactions: 6000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	tail := splitDataset(t, src, d, 0.7)
	job := func(factors, iterations int) *jobs.ALSJobOptions {
		return &jobs.ALSJobOptions{Source: src, SourceVersion: -1, Output: prefix, Top: 10,
			ALS: jobs.ALSOptions{Factors: factors, Iterations: iterations}}
	}
	res, good, err := RunALS(ctx, prefix, job(16, 8), nil)
	if err != nil {
		t.Fatal(err)
	}
	if good.Status != StatusLive || res.Baseline != nil || res.Drift != nil {
		t.Fatalf("first run: %s (%s), baseline %v drift %v", good.Status, good.Reason, res.Baseline, res.Drift)
	}
	if _, ok := good.Metrics[jobs.MetricTopItems].([]any); !ok || good.Metrics[jobs.MetricDataUntil] == nil || good.Metrics[jobs.MetricTypeMix] == nil {
		t.Fatalf("first run's metrics lack what the next run compares with: %v", good.Metrics)
	}
	b := Baseline(prefix, good)
	if b.ItemFactors.Version < 0 || b.Alpha != jobs.DefaultAlpha || b.Factors != 16 || b.DataUntil.IsZero() {
		t.Fatalf("baseline of the live run: %+v", b)
	}

	// The same run again: skipped, nothing registered.
	if res, run, err := RunALS(ctx, prefix, job(16, 8), nil); err != nil || !res.Skipped || run != nil {
		t.Fatalf("rerun: %+v %v %v", res, run, err)
	}

	// The next events arrive; a deliberately worse model is trained on them.
	if _, err := jobs.WriteDataset(ctx, src, tail); err != nil {
		t.Fatal(err)
	}
	res, worse, err := RunALS(ctx, prefix, job(2, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	bl := res.Baseline
	if bl == nil || bl.RunID != good.RunID || bl.Users == 0 || bl.HeldOutCompared <= 0 {
		t.Fatalf("worse run's baseline: %+v (errors: %v)", bl, worse.Metrics[jobs.MetricBaselineError])
	}
	t.Logf("worse run: recall %.4f on its split; on the compared items %.4f vs live %.4f (%d users, %.2f compared, %.2f known): %s",
		res.Eval.ALS.Recall, bl.CandidateRecall, bl.Recall, bl.Users, bl.HeldOutCompared, bl.HeldOutKnown, worse.Reason)
	if worse.Status != StatusRejected || !strings.Contains(worse.Reason, "both on this run's split") {
		t.Fatalf("worse run: %s (%s)", worse.Status, worse.Reason)
	}
	dr, ok := worse.Metrics[jobs.MetricDrift].(map[string]any)
	if !ok || dr["run_id"] != good.RunID || !(dr["new_users_share"].(float64) >= 0) || dr["similar_jaccard"] == nil {
		t.Fatalf("worse run's drift: %v", worse.Metrics[jobs.MetricDrift])
	}
	if _, ok := worse.Metrics[jobs.MetricBaseline].(map[string]any); !ok {
		t.Fatalf("worse run's baseline metric: %v", worse.Metrics[jobs.MetricBaseline])
	}
	st, err := Load(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live(JobALS).RunID != good.RunID {
		t.Fatalf("live after the worse run: %s", st.Live(JobALS).RunID)
	}

	// A good model on the same data: compared on its split with the live model, and it goes live.
	res, better, err := RunALS(ctx, prefix, job(16, 8), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("good run: %s", better.Reason)
	if better.Status != StatusLive || !strings.Contains(better.Reason, "both on this run's split") || res.Baseline.RunID != good.RunID {
		t.Fatalf("good run on the new data: %s (%s)", better.Status, better.Reason)
	}

	// --no-eval: a candidate, still with its drift.
	o := job(8, 3)
	o.NoEval = true
	res, cand, err := RunALS(ctx, prefix, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cand.Status != StatusCandidate || res.Baseline != nil || res.Drift == nil || res.Drift.RunID != better.RunID {
		t.Fatalf("--no-eval run: %s, baseline %v, drift %+v", cand.Status, res.Baseline, res.Drift)
	}
}

func TestRunTrending(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, prefix := filepath.Join(dir, "events"), filepath.Join(dir, "out")
	d, err := jobs.Generate(&jobs.GenOptions{Users: 100, Items: 50, Days: 2, Interactions: 2000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.WriteDataset(ctx, src, d); err != nil {
		t.Fatal(err)
	}
	opts := &trending.Options{Source: src, SourceVersion: -1, Output: prefix}
	res, run, err := RunTrending(ctx, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if run == nil || run.Status != StatusLive || run.Job != JobTrending || res.Windows == 0 || run.SourceVersion != res.SourceVersion {
		t.Fatalf("trending run: %+v %+v", res, run)
	}
	// Nothing new: nothing written, nothing registered.
	if _, run, err := RunTrending(ctx, opts, nil); err != nil || run != nil {
		t.Fatalf("no-op trending run: %+v %v", run, err)
	}
	if _, _, err := RunTrending(ctx, &trending.Options{Source: src, SourceVersion: -1}, nil); !errors.Is(err, trending.ErrBadParameter) {
		t.Fatalf("no output: %v", err)
	}
}
