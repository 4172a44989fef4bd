package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
)

// ErrNotRegistered: the job committed its outputs, but registering the run failed. RunALS and
// RunTrending return it (wrapped) together with the job's result.
var ErrNotRegistered = errors.New("the outputs are committed, but registering the run failed")

// RunALS runs `lake als` under the registry of prefix (the job's output prefix, opts.Output):
// it loads the registry, gives the job the live ALS run as its baseline (so that the live model
// is scored on the new run's held-out split and the drift from it is measured), runs the job and
// registers the result, applying the gate. It returns the job's result and the run as registered;
// the run is nil when the job was skipped (its outputs already held this source version built
// with these parameters). opts is not modified.
//
// When the job fails it returns a nil result; when the job committed but registering failed it
// returns the result, a nil run and an error wrapping ErrNotRegistered.
func RunALS(ctx context.Context, prefix string, opts *jobs.ALSJobOptions, ro *Options) (*jobs.ALSJobResult, *Run, error) {
	if opts == nil {
		return nil, nil, fmt.Errorf("%w: no options", jobs.ErrBadParameter)
	}
	o := *opts
	if prefix == "" {
		prefix = o.Output
	}
	if o.Baseline == nil {
		b, err := LiveBaseline(ctx, prefix)
		if err != nil {
			return nil, nil, err
		}
		o.Baseline = b
	}
	res, err := jobs.RunALS(ctx, &o)
	if err != nil {
		return nil, nil, err
	}
	run, err := RegisterALS(ctx, prefix, res, ro)
	if err != nil {
		return res, nil, fmt.Errorf("%w: %w", ErrNotRegistered, err)
	}
	return res, run, nil
}

// RunTrending runs `lake trending` once (trending.Run) and registers what it committed under
// the registry of opts.Output (trending runs go live directly). The run is nil when nothing was
// written. Errors are as for RunALS.
func RunTrending(ctx context.Context, opts *trending.Options, ro *Options) (*trending.Result, *Run, error) {
	if opts == nil {
		return nil, nil, fmt.Errorf("%w: no options", trending.ErrBadParameter)
	}
	res, err := trending.Run(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	run, err := RegisterTrending(ctx, opts.Output, res.SourceVersion, res.Outputs, ro)
	if err != nil {
		return res, nil, fmt.Errorf("%w: %w", ErrNotRegistered, err)
	}
	return res, run, nil
}

// LiveBaseline returns the live ALS run of the registry under prefix as a jobs.Baseline, or nil
// when there is no registry or no live ALS run.
func LiveBaseline(ctx context.Context, prefix string) (*jobs.Baseline, error) {
	st, err := Load(ctx, prefix)
	if errors.Is(err, ErrNoRegistry) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return Baseline(prefix, st.Live(JobALS)), nil
}

// Baseline turns the ALS run r, whose outputs are under prefix, into a jobs.Baseline; nil when
// r is nil.
func Baseline(prefix string, r *Run) *jobs.Baseline {
	if r == nil {
		return nil
	}
	b := &jobs.Baseline{RunID: r.RunID, Metrics: r.Metrics}
	tv := func(name string) jobs.TableVersion {
		v, ok := r.Outputs[name]
		if !ok || v < 0 {
			return jobs.TableVersion{Version: -1}
		}
		return jobs.TableVersion{URI: jobs.ChildURI(prefix, name), Version: v}
	}
	b.ItemFactors = tv(jobs.OutItemFactors)
	b.SimilarItems = tv(jobs.OutSimilarItems)
	b.UserRecommendations = tv(jobs.OutUserRecommendations)
	num := func(k string) float64 {
		v, _ := r.Parameters[k].(float64)
		return v
	}
	b.Alpha, b.Lambda, b.Factors = float32(num("alpha")), float32(num("lambda")), int(num("factors"))
	// The live model saw no interaction later than its data's latest. A run registered before
	// runs recorded that saw none later than its registration either (event times are not in
	// the future), a bound that errs on the safe side: fewer held-out pairs compared.
	b.DataUntil = r.CreatedAt
	if v, ok := r.Metrics[jobs.MetricDataUntil].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			b.DataUntil = t
		}
	}
	return b
}
