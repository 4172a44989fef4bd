package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/registry"
)

func init() {
	register(&command{name: "gen", summary: "generate interaction files with ground truth (for tests, benchmarks, the demo)", run: runGen})
	register(&command{name: "als", summary: "train implicit ALS on a pinned snapshot; write item factors, similar items and recommendations", run: runALS})
}

func runGen(ctx context.Context, e *env, args []string) error {
	fs := newFlags("gen", "--out DIR [--users N] [--items N] [--days N] [--start YYYY-MM-DD] [--interactions N] [--seed S] [--event-seed S]", e)
	out := fs.String("out", "", "the folder to write (created if missing)")
	users := fs.Int("users", 10000, "users")
	items := fs.Int("items", 5000, "items")
	days := fs.Int("days", 30, "days of events")
	n := fs.Int("interactions", 1000000, "events in all, surges and decoys included")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same files")
	eventSeed := fs.Uint64("event-seed", 0, "draw the events from this seed while the items and users stay --seed's (0: --seed's): the same shop in another period, with --start")
	startDay := fs.String("start", "2024-03-01", "the first day of events (UTC)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	start, err := time.Parse(time.DateOnly, *startDay)
	if err != nil {
		return usagef("--start %q: want a day as YYYY-MM-DD", *startDay)
	}
	if *out == "" {
		return usagef("give --out DIR, the folder for the generated files")
	}
	if *users < 1 || *items < 2 || *days < 1 || *n < 1 {
		return usagef("--users, --days and --interactions must be at least 1 and --items at least 2")
	}
	d, err := jobs.Generate(&jobs.GenOptions{Users: *users, Items: *items, Days: *days, Interactions: *n, Seed: *seed, EventSeed: *eventSeed, Start: start})
	if err != nil {
		return usagef("%v", err)
	}
	if err := d.WriteFiles(*out); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	var per [3]int
	for _, ev := range d.Events {
		per[ev.Source]++
	}
	fmt.Fprintf(e.stdout, "generated %d interactions (%d users, %d items, %d days, seed %d) in %s: retail.csv %d, app.json %d, clicks.ndjson %d; truth: %d surges, %d decoys\n",
		len(d.Events), *users, *items, *days, *seed, *out, per[jobs.SourceRetail], per[jobs.SourceApp], per[jobs.SourceClicks], len(d.Surges), len(d.Decoys))
	return nil
}

func runALS(ctx context.Context, e *env, args []string) error {
	fs := newFlags("als", "--source URI --output PREFIX [--source-version N] [--factors 64] [--iterations 15] [--alpha A] [--lambda L] [--weights view=1,add_to_cart=3,purchase=5] [--weight-by-value] [--half-life D] [--top 20] [--seed S] [--warm-start PREFIX] [--solver cg|cholesky] [--no-eval] [--gate-tolerance 0.02] [--force]", e)
	source := fs.String("source", "", "the interaction table")
	output := fs.String("output", "", "the output prefix: PREFIX/item_factors, PREFIX/similar_items, PREFIX/user_recommendations")
	version := fs.Int64("source-version", -1, "read this version of the source (default: the latest at start)")
	factors := fs.Int("factors", jobs.DefaultFactors, "latent factors")
	iters := fs.Int("iterations", jobs.DefaultIterations, "ALS iterations")
	alpha := fs.Float64("alpha", jobs.DefaultAlpha, "confidence c = 1 + alpha*r")
	lambda := fs.Float64("lambda", jobs.DefaultLambda, "L2 regularisation")
	weights := fs.String("weights", "view=1,add_to_cart=3,purchase=5", "weight per interaction type (other types weigh 1)")
	byValue := fs.Bool("weight-by-value", false, "weigh each interaction by its value column (ratings) instead of its type")
	halfLife := fs.String("half-life", "", "exponential time decay of weights, e.g. 30d (default: none)")
	top := fs.Int("top", 20, "similar items per item and recommendations per user")
	seed := fs.Uint64("seed", 1, "random seed: the same seed and source version give the same outputs")
	warm := fs.String("warm-start", "", "start from the item factors of an earlier run's output PREFIX")
	solver := fs.String("solver", jobs.SolverCG, "cg (conjugate gradient, fast) or cholesky (exact, the reference)")
	cgSteps := fs.Int("cg-steps", jobs.DefaultCGSteps, "CG steps per row and half-iteration")
	noEval := fs.Bool("no-eval", false, "skip the held-out evaluation (recall@10, NDCG@10 against popularity and item-kNN)")
	evalUsers := fs.Int("eval-users", jobs.DefaultEvalUsers, "users sampled for the evaluation")
	force := fs.Bool("force", false, "run even if the outputs already hold this source version built with these parameters")
	asJSON := fs.Bool("json", false, "print the result as one JSON line")
	gateTol := fs.Float64("gate-tolerance", registry.DefaultGateTolerance, "the run goes live only if its held-out recall@10 is at most this much (absolute) below the live run's (PREFIX/models)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	switch {
	case *source == "":
		return usagef("give --source URI, the interaction table to learn from")
	case *output == "":
		return usagef("give --output PREFIX, where item_factors, similar_items and user_recommendations go")
	case *factors < 1 || *factors > 1024:
		return usagef("--factors %d: want 1 to 1024", *factors)
	case *iters < 1:
		return usagef("--iterations %d: want at least 1", *iters)
	case !(*alpha > 0) || math.IsInf(*alpha, 0):
		return usagef("--alpha %v: want a positive number", *alpha)
	case !(*lambda > 0) || math.IsInf(*lambda, 0):
		return usagef("--lambda %v: want a positive number", *lambda)
	case *top < 1:
		return usagef("--top %d: want at least 1", *top)
	case *cgSteps < 1:
		return usagef("--cg-steps %d: want at least 1", *cgSteps)
	case *solver != jobs.SolverCG && *solver != jobs.SolverCholesky:
		return usagef("--solver %q: want cg or cholesky", *solver)
	case *version < -1:
		return usagef("--source-version %d: want a version (0 or more)", *version)
	case *seed == 0:
		return usagef("--seed 0: want a positive seed")
	}
	w, err := jobs.ParseWeights(*weights)
	if err != nil {
		return usagef("--%v", err)
	}
	opts := &jobs.ALSJobOptions{
		Source: *source, SourceVersion: *version, Output: *output,
		ALS: jobs.ALSOptions{Factors: *factors, Iterations: *iters, Alpha: float32(*alpha), Lambda: float32(*lambda),
			Seed: *seed, Solver: *solver, CGSteps: *cgSteps},
		Weights: w, WeightByValue: *byValue, Top: *top, WarmStart: *warm, NoEval: *noEval, EvalUsers: *evalUsers,
		Force: *force, Progress: e.stderr,
	}
	if *halfLife != "" {
		d, err := jobs.ParseDuration(*halfLife)
		if err != nil || d <= 0 {
			return usagef("--half-life %q: want a positive duration, e.g. 36h, 30d or 2w", *halfLife)
		}
		opts.HalfLife = d
	}
	res, run, err := registry.RunALS(ctx, *output, opts, &registry.Options{GateTolerance: registry.Tolerance(*gateTol)})
	if err != nil {
		if errors.Is(err, jobs.ErrBadParameter) {
			return usagef("%v", err)
		}
		return err
	}
	regOut := e.stdout
	if *asJSON {
		regOut = e.stderr
	}
	reportRun(regOut, *output, run)
	if *asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}
	if res.Skipped {
		fmt.Fprintf(e.stdout, "nothing written: the outputs under %s already hold source version %d built with these parameters (--force runs anyway)\n", *output, res.SourceVersion)
		return nil
	}
	for _, o := range res.Outputs {
		if o.Skipped {
			fmt.Fprintf(e.stdout, "%s: already built from source version %d with these parameters; not written\n", o.URI, res.SourceVersion)
		} else {
			fmt.Fprintf(e.stdout, "%s: version %d, %d rows\n", o.URI, o.Version, o.Rows)
		}
	}
	if ev := res.Eval; ev != nil {
		fmt.Fprintf(e.stdout, "held-out recall@10 / NDCG@10 on %d users: ALS %.4f / %.4f, popularity %.4f / %.4f, item-kNN %.4f / %.4f\n",
			ev.Users, ev.ALS.Recall, ev.ALS.NDCG, ev.Popularity.Recall, ev.Popularity.NDCG, ev.ItemKNN.Recall, ev.ItemKNN.NDCG)
	}
	if b := res.Baseline; b != nil {
		fmt.Fprintf(e.stdout, "against live run %s on this run's split (%d users, the %.0f%% of held-out items newer than its data): recall@10 / NDCG@10 this run %.4f / %.4f, live %.4f / %.4f\n",
			b.RunID, b.Users, 100*b.HeldOutCompared, b.CandidateRecall, b.CandidateNDCG, b.Recall, b.NDCG)
	}
	if d := res.Drift; d != nil {
		fmt.Fprintf(e.stdout, "drift from live run %s: %s\n", d.RunID, driftSummary(d.SimilarJaccard, d.NewUsersShare, d.NewItemsShare, d.TypeMixShift, d.PopularityShift))
	}
	return nil
}

// driftSummary is a drift report on one line; a nil value (not measured) is "-".
func driftSummary(jaccard, newUsers, newItems, typeMix, popularity *float64) string {
	f := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.3f", *v)
	}
	return fmt.Sprintf("similar-items Jaccard %s, new users %s, new items %s, type-mix shift %s, popularity shift %s",
		f(jaccard), f(newUsers), f(newItems), f(typeMix), f(popularity))
}
