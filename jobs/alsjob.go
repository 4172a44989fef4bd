package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// Output table names of `lake als`, under the output prefix.
const (
	OutItemFactors         = "item_factors"
	OutSimilarItems        = "similar_items"
	OutUserRecommendations = "user_recommendations"
)

// ALSJobOptions are the parameters of `lake als`. Source and Output are required.
type ALSJobOptions struct {
	Source        string
	SourceVersion int64 // -1: the latest at start
	Output        string
	ALS           ALSOptions         // factors, iterations, alpha, lambda, seed, solver
	Weights       map[string]float32 // per interaction type; nil: DefaultWeights
	WeightByValue bool
	HalfLife      time.Duration
	Top           int    // per item and per user; default 20
	WarmStart     string // an earlier run's output prefix: start from its item factors
	NoEval        bool
	EvalUsers     int // users sampled for evaluation; default DefaultEvalUsers
	Force         bool
	// Baseline is the live model to compare with (see Baseline); nil: none (the first run).
	Baseline *Baseline
	// Progress receives one line per step (stderr in the CLI); nil: none.
	Progress io.Writer
}

// ALSJobResult is what a run did.
type ALSJobResult struct {
	SourceVersion int64          `json:"source_version"`
	SourceRows    int64          `json:"source_rows"`
	Users         int            `json:"users"`
	Items         int            `json:"items"`
	Pairs         int            `json:"pairs"`
	Skipped       bool           `json:"skipped"` // every output was already built
	Outputs       []OutputResult `json:"outputs"`
	Eval          *EvalResult    `json:"eval,omitempty"`
	// Baseline is the live model (ALSJobOptions.Baseline) scored on this run's split; Drift is how
	// far this run moved from it. Both nil without a baseline; Baseline nil with NoEval.
	Baseline *BaselineResult `json:"baseline,omitempty"`
	Drift    *Drift          `json:"drift,omitempty"`
	// TypeMix and TopItems describe this run's data for the next run's drift report.
	TypeMix  map[string]float64 `json:"type_mix,omitempty"`
	TopItems []string           `json:"top_items,omitempty"`
	// DataUntil is the time of the latest interaction read (a later run's Baseline.DataUntil).
	DataUntil time.Time `json:"data_until,omitzero"`
	LSH       LSHStats  `json:"lsh"`
	Seconds   float64   `json:"seconds"`
}

// RunALS runs `lake als`: it pins the source at one version, trains implicit ALS (and, unless
// NoEval, first a copy on a held-out split to measure recall@10 and NDCG@10 against popularity and
// item-kNN), finds similar items with LSH and each user's top items, and replaces the three output
// tables, one commit each, with lineage. When every output already holds this source version
// built with these parameters, it computes nothing and returns Skipped.
func RunALS(ctx context.Context, opts *ALSJobOptions) (*ALSJobResult, error) {
	start := time.Now()
	o := *opts
	if o.Source == "" || o.Output == "" {
		return nil, badParam("give --source URI and --output PREFIX")
	}
	if o.Weights == nil {
		o.Weights = DefaultWeights()
	}
	if o.Top == 0 {
		o.Top = 20
	}
	if o.Top < 1 || o.Top > 10000 {
		return nil, badParam("top must be between 1 and 10000, not %d", o.Top)
	}
	if o.HalfLife < 0 {
		return nil, badParam("half-life must be positive")
	}
	if o.EvalUsers <= 0 {
		o.EvalUsers = DefaultEvalUsers
	}
	alsOpts, err := o.ALS.resolve()
	if err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "als: "+format+"\n", args...)
		}
	}

	src, err := table.Open(ctx, o.Source, nil)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var snap *txlog.Snapshot
	if o.SourceVersion >= 0 {
		snap, err = src.SnapshotAt(ctx, o.SourceVersion)
		if err != nil {
			return nil, fmt.Errorf("source version %d: %w (see `lake history %s` for the versions)", o.SourceVersion, err, o.Source)
		}
	} else if snap, err = src.Snapshot(ctx); err != nil {
		return nil, err
	}
	res := &ALSJobResult{SourceVersion: snap.Version()}

	// Warm start: the earlier run's item factors, pinned now.
	var warm map[string][]float32
	var warmVersion int64 = -1
	if o.WarmStart != "" {
		warm, warmVersion, err = readItemFactors(ctx, ChildURI(o.WarmStart, OutItemFactors), alsOpts.Factors)
		if err != nil {
			return nil, err
		}
	}
	params := map[string]any{
		"source": o.Source, "factors": alsOpts.Factors, "iterations": alsOpts.Iterations,
		"alpha": alsOpts.Alpha, "lambda": alsOpts.Lambda, "seed": alsOpts.Seed, "solver": alsOpts.Solver,
		"cgSteps": alsOpts.CGSteps, "weights": sortedWeights(o.Weights), "weightByValue": o.WeightByValue,
		"halfLife": o.HalfLife.String(), "top": o.Top, "warmStart": o.WarmStart,
	}
	names := []string{OutItemFactors, OutSimilarItems, OutUserRecommendations}
	appIDs := map[string]string{}
	allDone := !o.Force
	for _, name := range names {
		appIDs[name] = AppID("als", name, params)
		if allDone {
			rec, err := outputState(ctx, ChildURI(o.Output, name), appIDs[name])
			if err != nil {
				return nil, err
			}
			allDone = rec == snap.Version()
		}
	}
	if allDone {
		for _, name := range names {
			res.Outputs = append(res.Outputs, OutputResult{Name: name, URI: ChildURI(o.Output, name), Skipped: true})
		}
		res.Skipped = true
		logf("outputs under %s already hold source version %d built with these parameters; nothing to do (--force runs anyway)", o.Output, snap.Version())
		return res, nil
	}

	t0 := time.Now()
	in, err := ReadInteractions(ctx, src, snap, o.WeightByValue)
	if err != nil {
		return nil, err
	}
	if in.Len() == 0 {
		return nil, fmt.Errorf("%w: %s at version %d has no rows with a user, item, type and time; ingest some first (`lake ingest`)", ErrEmptySource, o.Source, snap.Version())
	}
	res.SourceRows = int64(in.Len()) + in.Skipped
	pairs := in.Aggregate(o.Weights, o.HalfLife, o.WeightByValue)
	res.Users, res.Items, res.Pairs = len(in.UserIDs), len(in.ItemIDs), len(pairs.Item)
	logf("source %s version %d: %d interactions (%d skipped for nulls), %d users, %d items, %d user-item pairs; read in %.1fs",
		o.Source, snap.Version(), in.Len(), in.Skipped, res.Users, res.Items, res.Pairs, time.Since(t0).Seconds())
	if warm != nil {
		alsOpts.InitItems = make([]float32, len(in.ItemIDs)*alsOpts.Factors)
		found := 0
		for i, id := range in.ItemIDs {
			if f, ok := warm[id]; ok {
				copy(alsOpts.InitItems[i*alsOpts.Factors:], f)
				found++
			}
		}
		logf("warm start from %s version %d: %d of %d items", ChildURI(o.WarmStart, OutItemFactors), warmVersion, found, len(in.ItemIDs))
	}
	alsOpts.ComputeLoss = true
	progress := func(tag string) func(IterationInfo) {
		return func(it IterationInfo) {
			logf("%siteration %d/%d: loss %.5f, %.2fs, %.2fM interactions/s", tag, it.Iteration, alsOpts.Iterations, it.Loss,
				it.Seconds, float64(in.Len())/it.Seconds/1e6)
		}
	}

	metrics := map[string]any{}
	res.TypeMix, res.TopItems = typeMix(in), topItems(in, driftTopItems)
	metrics[MetricTypeMix], metrics[MetricTopItems] = res.TypeMix, res.TopItems
	res.DataUntil = time.UnixMicro(slices.Max(in.Time)).UTC()
	metrics[MetricDataUntil] = res.DataUntil.Format(time.RFC3339Nano)
	var live *liveModel
	var baselineErrs []string
	if o.Baseline != nil {
		t1 := time.Now()
		if live, baselineErrs, err = readLiveModel(ctx, o.Baseline); err != nil {
			return nil, err
		}
		logf("baseline: live run %s read in %.1fs", o.Baseline.RunID, time.Since(t1).Seconds())
		for _, e := range baselineErrs {
			logf("baseline: %s", e)
		}
	}
	if !o.NoEval {
		split := HoldOut(pairs, o.EvalUsers, alsOpts.Seed)
		train := pairs.Ratings(split.Drop)
		logf("evaluation: holding out the latest items of %d users; training on the rest", len(split.Users))
		eo := alsOpts
		eo.Progress = progress("[eval] ")
		m, err := TrainALS(ctx, train, &eo)
		if err != nil {
			return nil, err
		}
		t1 := time.Now()
		ev, err := Evaluate(ctx, m, train, pairs, split)
		if err != nil {
			return nil, err
		}
		res.Eval = ev
		logf("evaluation on %d users (scored in %.1fs): recall@10 / NDCG@10: ALS %.4f / %.4f, popularity %.4f / %.4f, item-kNN %.4f / %.4f",
			ev.Users, time.Since(t1).Seconds(), ev.ALS.Recall, ev.ALS.NDCG, ev.Popularity.Recall, ev.Popularity.NDCG, ev.ItemKNN.Recall, ev.ItemKNN.NDCG)
		metrics["eval"] = ev
		if b := o.Baseline; b != nil {
			if err := compareWithBaseline(ctx, b, live, in, pairs, train, split, m, res, metrics, logf); err != nil {
				baselineErrs = append(baselineErrs, err.Error())
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}

	r := pairs.Ratings(nil)
	var lastLoss float64
	alsOpts.Progress = func(it IterationInfo) {
		lastLoss = it.Loss
		progress("")(it)
	}
	t0 = time.Now()
	m, err := TrainALS(ctx, r, &alsOpts)
	if err != nil {
		return nil, err
	}
	trainSec := time.Since(t0).Seconds()
	if !math.IsNaN(lastLoss) && !math.IsInf(lastLoss, 0) { // JSON has no NaN
		metrics["loss"] = lastLoss
	}
	metrics["train_seconds"] = trainSec
	metrics["interactions_per_second"] = float64(in.Len()) * float64(alsOpts.Iterations) / trainSec

	t0 = time.Now()
	sim, st, err := SimilarItems(ctx, m.Items, m.Factors, o.Top, &LSHOptions{Seed: alsOpts.Seed})
	if err != nil {
		return nil, err
	}
	res.LSH = st
	logf("similar items: LSH %d tables × %d bits, %d probes; exact cosine for %.2f%% of pairs; %.1fs",
		st.Tables, st.Bits, st.Probes, 100*st.PairFraction, time.Since(t0).Seconds())
	metrics["lsh"] = st

	t0 = time.Now()
	var users []int32
	for u := range r.NUsers {
		if r.ByUser.Indptr[u+1] > r.ByUser.Indptr[u] {
			users = append(users, int32(u))
		}
	}
	recs, err := RecommendUsers(ctx, m, &r.ByUser, users, o.Top)
	if err != nil {
		return nil, err
	}
	logf("user recommendations: %d users, %.1fs", len(users), time.Since(t0).Seconds())
	if o.Baseline != nil {
		res.Drift = computeDrift(o.Baseline, live, &driftInputs{itemIDs: in.ItemIDs, userIDs: in.UserIDs, recUsers: users,
			similar: sim, typeMix: res.TypeMix, topItems: res.TopItems})
		metrics[MetricDrift] = res.Drift
	}
	if len(baselineErrs) > 0 {
		metrics[MetricBaselineError] = strings.Join(baselineErrs, "; ")
	}

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lin := &Lineage{Job: "als", Source: o.Source, SourceVersion: snap.Version(), SourceRows: res.SourceRows,
		Parameters: params, Metrics: metrics}
	// Recorded, but not part of the appId: noEval does not change the outputs, and the warm
	// start's version changes with every run that warm-starts from its own output prefix, which
	// would make such runs never idempotent.
	params["noEval"] = o.NoEval
	params["warmStartVersion"] = warmVersion
	delete(params, "source") // the source is a lineage field of its own
	outs := []*output{
		itemFactorsOutput(in.ItemIDs, m),
		similarOutput(in.ItemIDs, sim),
		recsOutput(in.UserIDs, in.ItemIDs, users, recs),
	}
	for _, out := range outs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		lin.RunSeconds = time.Since(start).Seconds()
		uri := ChildURI(o.Output, out.name)
		or, err := commitOutput(ctx, uri, out, lin, appIDs[out.name], o.Force)
		if err != nil {
			return res, err
		}
		res.Outputs = append(res.Outputs, or)
		if or.Skipped {
			logf("%s already holds source version %d built with these parameters; not written", uri, snap.Version())
		} else {
			logf("committed %s version %d: %d rows", uri, or.Version, or.Rows)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// readItemFactors reads an item_factors table (its latest version).
func readItemFactors(ctx context.Context, uri string, k int) (map[string][]float32, int64, error) {
	t, err := table.Open(ctx, uri, nil)
	if err != nil {
		if errors.Is(err, txlog.ErrNotATable) {
			return nil, -1, badParam("--warm-start: %s is not a table; give the --output PREFIX of an earlier `lake als` run", uri)
		}
		return nil, -1, err
	}
	defer t.Close()
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return nil, -1, err
	}
	scan, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Columns: []string{"item_id", "factors"}})
	if err != nil {
		return nil, -1, fmt.Errorf("--warm-start %s: %w", uri, err)
	}
	out := map[string][]float32{}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return nil, -1, err
		}
		ids, ok1 := rec.Column(0).(*array.String)
		lists, ok2 := rec.Column(1).(*array.List)
		if !ok1 || !ok2 {
			return nil, -1, fmt.Errorf("--warm-start %s: want columns item_id string, factors array<float>", uri)
		}
		vals, ok := lists.ListValues().(*array.Float32)
		if !ok {
			return nil, -1, fmt.Errorf("--warm-start %s: factors must be array<float>", uri)
		}
		for i := range int(rec.NumRows()) {
			if ids.IsNull(i) || lists.IsNull(i) {
				continue
			}
			lo, hi := lists.ValueOffsets(i)
			if int(hi-lo) != k {
				return nil, -1, badParam("--warm-start %s has %d factors per item; --factors is %d", uri, hi-lo, k)
			}
			f := make([]float32, k)
			for j := range k {
				f[j] = vals.Value(int(lo) + j)
			}
			out[strings.Clone(ids.Value(i))] = f // Value points into the batch, released after the loop body
		}
	}
	return out, snap.Version(), nil
}

func itemFactorsSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "item_id", Type: txlog.String},
		{Name: "factors", Type: &txlog.ArrayType{ElementType: txlog.Float}},
	}}
}

func similarSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "item_id", Type: txlog.String},
		{Name: "similar_item_id", Type: txlog.String},
		{Name: "score", Type: txlog.Double},
		{Name: "rank", Type: txlog.Integer},
	}}
}

func recsSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "user_id", Type: txlog.String},
		{Name: "item_id", Type: txlog.String},
		{Name: "score", Type: txlog.Double},
		{Name: "rank", Type: txlog.Integer},
	}}
}

const outBatchRows = 65536

func itemFactorsOutput(ids []string, m *Model) *output {
	return &output{name: OutItemFactors, schema: itemFactorsSchema(), rows: int64(len(ids)),
		records: func(alloc memory.Allocator, schema *arrow.Schema, yield func(arrow.RecordBatch) error) error {
			b := array.NewRecordBuilder(alloc, schema)
			defer b.Release()
			idb := b.Field(0).(*array.StringBuilder)
			lb := b.Field(1).(*array.ListBuilder)
			vb := lb.ValueBuilder().(*array.Float32Builder)
			for i, id := range ids {
				idb.Append(id)
				lb.Append(true)
				vb.AppendValues(m.ItemVec(i), nil)
				if (i+1)%outBatchRows == 0 || i == len(ids)-1 {
					if err := flush(b, yield); err != nil {
						return err
					}
				}
			}
			return nil
		}}
}

func similarOutput(ids []string, sim [][]Neighbor) *output {
	return pairOutput(OutSimilarItems, similarSchema(), ids, ids, nil, sim)
}

func recsOutput(userIDs, itemIDs []string, users []int32, recs [][]Neighbor) *output {
	return pairOutput(OutUserRecommendations, recsSchema(), userIDs, itemIDs, users, recs)
}

// pairOutput writes (key, item, score, rank) rows: lists[j] belongs to keys[rows[j]] (rows nil:
// keys[j]).
func pairOutput(name string, st *txlog.StructType, keys, itemIDs []string, rows []int32, lists [][]Neighbor) *output {
	var n int64
	for _, l := range lists {
		n += int64(len(l))
	}
	return &output{name: name, schema: st, rows: n,
		records: func(alloc memory.Allocator, schema *arrow.Schema, yield func(arrow.RecordBatch) error) error {
			b := array.NewRecordBuilder(alloc, schema)
			defer b.Release()
			kb := b.Field(0).(*array.StringBuilder)
			ib := b.Field(1).(*array.StringBuilder)
			sb := b.Field(2).(*array.Float64Builder)
			rb := b.Field(3).(*array.Int32Builder)
			pending := 0
			for j, l := range lists {
				key := keys[j]
				if rows != nil {
					key = keys[rows[j]]
				}
				for r, nb := range l {
					kb.Append(key)
					ib.Append(itemIDs[nb.Index])
					sb.Append(math.Round(float64(nb.Score)*1e6) / 1e6)
					rb.Append(int32(r + 1))
					pending++
				}
				if pending >= outBatchRows {
					if err := flush(b, yield); err != nil {
						return err
					}
					pending = 0
				}
			}
			if pending > 0 {
				return flush(b, yield)
			}
			return nil
		}}
}

func flush(b *array.RecordBuilder, yield func(arrow.RecordBatch) error) error {
	rec := b.NewRecordBatch()
	defer rec.Release()
	return yield(rec)
}
