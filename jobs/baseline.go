package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
)

// Metric keys RunALS records in its lineage (and the registry copies into the run's metrics).
const (
	// MetricBaseline is the live model scored on this run's held-out split (a *BaselineResult).
	MetricBaseline = "baseline"
	// MetricBaselineError says why the live model could not be scored or compared (a string).
	MetricBaselineError = "baseline_error"
	// MetricDrift is how far this run moved from the live model (a *Drift).
	MetricDrift = "drift"
	// MetricTypeMix is the share of each interaction type in this run's data (type -> share),
	// recorded by every run for the next one to compare with.
	MetricTypeMix = "type_mix"
	// MetricTopItems are the ids of the 100 items with the most interactions in this run's
	// data, most first, recorded by every run for the next one to compare with.
	MetricTopItems = "top_items"
	// MetricDataUntil is the time of the latest interaction in this run's data (RFC 3339).
	MetricDataUntil = "data_until"
)

// TableVersion names one version of a table.
type TableVersion struct {
	URI     string `json:"uri"`
	Version int64  `json:"version"`
}

// Baseline is the live model a new ALS run is compared with (the registry's live ALS run): the
// versions of its output tables, the ALS parameters it was trained with and the metrics it
// recorded. When ALSJobOptions.Baseline is set, RunALS scores the baseline on the new run's
// held-out split (metrics["baseline"], unless NoEval) and measures the drift from it
// (metrics["drift"]). The tables are read at the versions named (time travel), so a baseline
// stays valid while newer runs commit; a table the run does not have has the URI "".
type Baseline struct {
	RunID               string
	ItemFactors         TableVersion
	SimilarItems        TableVersion
	UserRecommendations TableVersion
	Alpha, Lambda       float32 // the live run's ALS parameters (0: the defaults)
	Factors             int     // the live run's factors (0: read from item_factors)
	// DataUntil is the time of the latest interaction the live model was trained on
	// (metrics["data_until"]); zero when unknown, and then every held-out pair is compared.
	DataUntil time.Time
	// Metrics are the live run's recorded metrics: MetricTypeMix and MetricTopItems feed the
	// drift report.
	Metrics map[string]any
}

// BaselineResult is the live model scored on the new run's held-out split: each evaluated user
// folded into the live item factors, the same items held out and excluded, the same scoring.
//
// Only the held-out interactions the live model cannot have seen are compared: pairs whose every
// interaction is later than the latest one in the live run's data (Baseline.DataUntil). A rerun
// on the data the live model was trained on would otherwise score the live model on items it
// was trained on. The held-out items left out are excluded from both rankings; users left with no
// held-out item are not scored. CandidateRecall and CandidateNDCG are this run's model on the
// same users and items, which the gate compares Recall with.
type BaselineResult struct {
	RunID           string  `json:"run_id"`
	Recall          float64 `json:"recall@10"`
	NDCG            float64 `json:"ndcg@10"`
	CandidateRecall float64 `json:"candidate_recall@10"`
	CandidateNDCG   float64 `json:"candidate_ndcg@10"`
	Users           int     `json:"users"`
	// HeldOutCompared is the share of the split's held-out pairs compared (newer than the live
	// model's data); HeldOutKnown the share of those whose item the live model has factors for
	// (it cannot recommend the others).
	HeldOutCompared float64 `json:"held_out_compared"`
	HeldOutKnown    float64 `json:"held_out_known"`
}

// itemFactors are the rows of an item_factors table.
type itemFactors struct {
	IDs     []string
	Factors []float32 // K per item, in the order of IDs
	K       int
	index   map[string]int32
}

func (f *itemFactors) lookup(id string) int32 {
	if i, ok := f.index[id]; ok {
		return i
	}
	return -1
}

func newItemFactors(ids []string, factors []float32, k int) *itemFactors {
	f := &itemFactors{IDs: ids, Factors: factors, K: k, index: make(map[string]int32, len(ids))}
	for i, id := range ids {
		f.index[id] = int32(i)
	}
	return f
}

// scanAt scans columns of version tv.Version of the table at tv.URI, calling fn per batch (the
// batch is released after fn returns).
func scanAt(ctx context.Context, tv TableVersion, columns []string, fn func(arrow.RecordBatch) error) error {
	t, err := table.Open(ctx, tv.URI, nil)
	if err != nil {
		return err
	}
	defer t.Close()
	snap, err := t.SnapshotAt(ctx, tv.Version)
	if err != nil {
		return fmt.Errorf("%s version %d: %w", tv.URI, tv.Version, err)
	}
	scan, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Columns: columns})
	if err != nil {
		return fmt.Errorf("%s version %d: %w", tv.URI, tv.Version, err)
	}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return fmt.Errorf("%s version %d: %w", tv.URI, tv.Version, err)
		}
		if err := fn(rec); err != nil {
			return fmt.Errorf("%s version %d: %w", tv.URI, tv.Version, err)
		}
	}
	return nil
}

// readItemFactorsAt reads an item_factors table at a pinned version.
func readItemFactorsAt(ctx context.Context, tv TableVersion) (*itemFactors, error) {
	var ids []string
	var factors []float32
	k := -1
	err := scanAt(ctx, tv, []string{"item_id", "factors"}, func(rec arrow.RecordBatch) error {
		idc, ok1 := rec.Column(0).(*array.String)
		lists, ok2 := rec.Column(1).(*array.List)
		if !ok1 || !ok2 {
			return errors.New("want columns item_id string, factors array<float>")
		}
		vals, ok := lists.ListValues().(*array.Float32)
		if !ok {
			return errors.New("factors must be array<float>")
		}
		for i := range int(rec.NumRows()) {
			if idc.IsNull(i) || lists.IsNull(i) {
				continue
			}
			lo, hi := lists.ValueOffsets(i)
			if k < 0 {
				k = int(hi - lo)
			}
			if int(hi-lo) != k || k == 0 {
				return fmt.Errorf("item %s has %d factors, others %d", idc.Value(i), hi-lo, k)
			}
			ids = append(ids, strings.Clone(idc.Value(i)))
			for j := lo; j < hi; j++ {
				factors = append(factors, vals.Value(int(j)))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if k <= 0 {
		return nil, fmt.Errorf("%s version %d has no item factors", tv.URI, tv.Version)
	}
	return newItemFactors(ids, factors, k), nil
}

// readSimilarAt reads a similar_items table at a pinned version: each item's similar items of
// rank at most top.
func readSimilarAt(ctx context.Context, tv TableVersion, top int) (map[string][]string, error) {
	out := map[string][]string{}
	err := scanAt(ctx, tv, []string{"item_id", "similar_item_id", "rank"}, func(rec arrow.RecordBatch) error {
		a, ok1 := rec.Column(0).(*array.String)
		b, ok2 := rec.Column(1).(*array.String)
		r, ok3 := rec.Column(2).(*array.Int32)
		if !ok1 || !ok2 || !ok3 {
			return errors.New("want columns item_id string, similar_item_id string, rank int")
		}
		for i := range int(rec.NumRows()) {
			if a.IsNull(i) || b.IsNull(i) || r.IsNull(i) || int(r.Value(i)) > top {
				continue
			}
			id := a.Value(i)
			if _, ok := out[id]; !ok {
				id = strings.Clone(id)
			}
			out[id] = append(out[id], strings.Clone(b.Value(i)))
		}
		return nil
	})
	return out, err
}

// readKeysAt reads the distinct values of a string column of a table at a pinned version.
func readKeysAt(ctx context.Context, tv TableVersion, column string) (map[string]bool, error) {
	out := map[string]bool{}
	err := scanAt(ctx, tv, []string{column}, func(rec arrow.RecordBatch) error {
		c, ok := rec.Column(0).(*array.String)
		if !ok {
			return fmt.Errorf("column %s is %s, want string", column, rec.Column(0).DataType())
		}
		for i := range int(rec.NumRows()) {
			if !c.IsNull(i) && !out[c.Value(i)] {
				out[strings.Clone(c.Value(i))] = true
			}
		}
		return nil
	})
	return out, err
}

// FoldIn scores item factors that were trained elsewhere (another model: ids and factors, k per
// item) on the held-out split s of this run's data (itemIDs: the ids of train's item indices):
// each evaluated user is folded in, that is x_u = argmin Σ_i c_ui (p_ui - x·y_i)² + λ|x|² over
// the user's training items the factors know (one exact implicit-ALS user solve, c = 1 + alpha·r),
// the items the factors know are ranked by x_u·y_i with the user's training items excluded, and
// recall@10 and NDCG@10 are computed as Evaluate computes them. A held-out item the factors do
// not know counts as a miss. It also returns the share of the held-out items the factors know.
func FoldIn(ctx context.Context, ids []string, factors []float32, k int, alpha, lambda float32,
	itemIDs []string, train *Ratings, s *Split) (RankingMetrics, float64, error) {
	if k < 1 || len(factors) != len(ids)*k {
		return RankingMetrics{}, 0, badParam("fold-in: %d factors for %d items of %d factors", len(factors), len(ids), k)
	}
	if alpha == 0 {
		alpha = DefaultAlpha
	}
	if lambda == 0 {
		lambda = DefaultLambda
	}
	return foldIn(ctx, newItemFactors(ids, factors, k), alpha, lambda, itemIDs, train, &comparison{users: s.Users, test: s.Test})
}

// comparison is the part of a held-out split two models are compared on: the evaluated users
// with at least one held-out item the older model cannot have seen, those items (test), and
// the user's other held-out items (exclude: ranked by neither model, since the older model may
// have been trained on them).
type comparison struct {
	users   []int32
	test    [][]int32
	exclude [][]int32 // nil: none
	// compared and total count the held-out pairs in test, and in the whole split.
	compared, total int
}

// compareOn restricts the split s to the held-out pairs whose every interaction is later than
// until (unix microseconds; the latest interaction the live model was trained on), so that the
// live model cannot have seen them. until < 0 (unknown) keeps every pair.
func compareOn(in *Interactions, p *Pairs, s *Split, until int64) *comparison {
	c := &comparison{}
	first := map[uint64]int64{}
	key := func(u, i int32) uint64 { return uint64(uint32(u))<<32 | uint64(uint32(i)) }
	for j, u := range s.Users {
		for _, i := range s.Test[j] {
			first[key(u, i)] = math.MaxInt64
			c.total++
		}
	}
	if until >= 0 {
		for x, u := range in.User {
			k := key(u, in.Item[x])
			if f, ok := first[k]; ok && in.Time[x] < f {
				first[k] = in.Time[x]
			}
		}
	}
	for j, u := range s.Users {
		var fresh, seen []int32
		for _, i := range s.Test[j] {
			if until < 0 || first[key(u, i)] > until {
				fresh = append(fresh, i)
			} else {
				seen = append(seen, i)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		c.users = append(c.users, u)
		c.test = append(c.test, fresh)
		c.exclude = append(c.exclude, seen)
		c.compared += len(fresh)
	}
	return c
}

// scoreModel scores m (trained on train) on the comparison, as Evaluate scores it.
func scoreModel(ctx context.Context, m *Model, train *Ratings, c *comparison) (RankingMetrics, error) {
	have := &train.ByUser
	if c.exclude != nil {
		extra := map[int32][]int32{}
		for j, u := range c.users {
			if len(c.exclude[j]) > 0 {
				extra[u] = c.exclude[j]
			}
		}
		have = &CSR{Indptr: make([]int64, train.NUsers+1)}
		for u := range train.NUsers {
			cols, vals := train.ByUser.Row(u)
			have.Indices = append(have.Indices, cols...)
			have.Values = append(have.Values, vals...)
			for _, i := range extra[int32(u)] {
				have.Indices = append(have.Indices, i)
				have.Values = append(have.Values, 0)
			}
			have.Indptr[u+1] = int64(len(have.Indices))
		}
	}
	recs, err := RecommendUsers(ctx, m, have, c.users, evalK)
	if err != nil {
		return RankingMetrics{}, err
	}
	return score(recs, c.test), nil
}

func foldIn(ctx context.Context, live *itemFactors, alpha, lambda float32, itemIDs []string, train *Ratings, c *comparison) (RankingMetrics, float64, error) {
	n, k := len(c.users), live.K
	if n == 0 {
		return RankingMetrics{}, 0, nil
	}
	toLive := make([]int32, len(itemIDs))
	for i, id := range itemIDs {
		toLive[i] = live.lookup(id)
	}
	// The users' training items in the live model's indices (the ones it knows): what each user
	// is folded in from, and excluded from the ranking, with the comparison's excluded items.
	fold := &CSR{Indptr: make([]int64, n+1)}
	have := &CSR{Indptr: make([]int64, n+1)}
	for j, u := range c.users {
		cols, vals := train.ByUser.Row(int(u))
		for x, i := range cols {
			if li := toLive[i]; li >= 0 {
				fold.Indices = append(fold.Indices, li)
				fold.Values = append(fold.Values, vals[x])
				have.Indices = append(have.Indices, li)
				have.Values = append(have.Values, vals[x])
			}
		}
		if c.exclude != nil {
			for _, i := range c.exclude[j] {
				if li := toLive[i]; li >= 0 {
					have.Indices = append(have.Indices, li)
					have.Values = append(have.Values, 0)
				}
			}
		}
		fold.Indptr[j+1] = int64(len(fold.Indices))
		have.Indptr[j+1] = int64(len(have.Indices))
	}
	workers := runtime.GOMAXPROCS(0)
	yty, err := gram(ctx, live.Factors, k, 0, workers)
	if err != nil {
		return RankingMetrics{}, 0, err
	}
	users := make([]float32, n*k)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for c0 := 0; c0 < n; c0 += chunkRows {
		g.Go(func() error {
			ws := newWorkspace(k, true)
			for j := c0; j < min(n, c0+chunkRows); j++ {
				if err := gctx.Err(); err != nil {
					return err
				}
				cols, vals := fold.Row(j)
				if err := ws.cholesky(users[j*k:(j+1)*k], live.Factors, yty, lambda, cols, vals, alpha); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return RankingMetrics{}, 0, err
	}
	recs, err := RecommendUsers(ctx, &Model{Factors: k, Users: users, Items: live.Factors}, have, nil, evalK)
	if err != nil {
		return RankingMetrics{}, 0, err
	}
	test := make([][]int32, n)
	known, total := 0, 0
	for j, items := range c.test {
		test[j] = make([]int32, len(items))
		for x, i := range items {
			test[j][x] = toLive[i] // -1 never matches a recommendation: a miss
			total++
			if toLive[i] >= 0 {
				known++
			}
		}
	}
	return score(recs, test), float64(known) / float64(max(total, 1)), nil
}

// readLiveModel reads what the baseline scoring and the drift report need of the live run's
// outputs, at their pinned versions. A table that cannot be read (vacuumed, say) is left nil and
// explained in the returned notes; only a cancelled ctx is an error.
func readLiveModel(ctx context.Context, b *Baseline) (*liveModel, []string, error) {
	live := &liveModel{}
	var notes []string
	note := func(name string, tv TableVersion, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if tv.URI == "" {
			notes = append(notes, fmt.Sprintf("live run %s has no %s", b.RunID, name))
		} else {
			notes = append(notes, fmt.Sprintf("live run %s's %s: %v", b.RunID, name, err))
		}
		return nil
	}
	var err error
	if b.ItemFactors.URI != "" {
		live.factors, err = readItemFactorsAt(ctx, b.ItemFactors)
	}
	if live.factors == nil {
		if err := note(OutItemFactors, b.ItemFactors, err); err != nil {
			return nil, nil, err
		}
	}
	err = nil
	if b.SimilarItems.URI != "" {
		live.similar, err = readSimilarAt(ctx, b.SimilarItems, driftSimilarTop)
		if err != nil {
			live.similar = nil
		}
	}
	if live.similar == nil {
		if err := note(OutSimilarItems, b.SimilarItems, err); err != nil {
			return nil, nil, err
		}
	}
	err = nil
	if b.UserRecommendations.URI != "" {
		live.users, err = readKeysAt(ctx, b.UserRecommendations, "user_id")
		if err != nil {
			live.users = nil
		}
	}
	if live.users == nil {
		if err := note(OutUserRecommendations, b.UserRecommendations, err); err != nil {
			return nil, nil, err
		}
	}
	return live, notes, nil
}

// compareWithBaseline scores the live model b (its outputs read into live) and this run's split
// model m on the held-out pairs of split the live model cannot have seen, and records the result
// in res.Baseline and metrics. An error says why the two were not compared.
func compareWithBaseline(ctx context.Context, b *Baseline, live *liveModel, in *Interactions, pairs *Pairs,
	train *Ratings, split *Split, m *Model, res *ALSJobResult, metrics map[string]any, logf func(string, ...any)) error {
	if live.factors == nil {
		return fmt.Errorf("live run %s has no readable item_factors: not scored on this run's split", b.RunID)
	}
	t0 := time.Now()
	until := int64(-1)
	if !b.DataUntil.IsZero() {
		until = b.DataUntil.UnixMicro()
	}
	c := compareOn(in, pairs, split, until)
	if len(c.users) == 0 {
		return fmt.Errorf("every held-out interaction of this run's split is from before %s, the end of live run %s's data, so the live model was trained on them: not scored on this run's split",
			b.DataUntil.Format(time.RFC3339), b.RunID)
	}
	alpha, lambda := b.Alpha, b.Lambda
	if alpha <= 0 {
		alpha = DefaultAlpha
	}
	if lambda <= 0 {
		lambda = DefaultLambda
	}
	lm, known, err := foldIn(ctx, live.factors, alpha, lambda, in.ItemIDs, train, c)
	if err != nil {
		return fmt.Errorf("scoring live run %s on this run's split: %w", b.RunID, err)
	}
	cm, err := scoreModel(ctx, m, train, c)
	if err != nil {
		return err
	}
	res.Baseline = &BaselineResult{RunID: b.RunID, Recall: lm.Recall, NDCG: lm.NDCG, CandidateRecall: cm.Recall, CandidateNDCG: cm.NDCG,
		Users: len(c.users), HeldOutCompared: float64(c.compared) / float64(max(c.total, 1)), HeldOutKnown: known}
	metrics[MetricBaseline] = res.Baseline
	logf("baseline: on the %d held-out items of %d users newer than live run %s's data (%.1fs): recall@10 / NDCG@10 this run %.4f / %.4f, live (folded in) %.4f / %.4f; the live model knows %.1f%% of those items",
		c.compared, len(c.users), b.RunID, time.Since(t0).Seconds(), cm.Recall, cm.NDCG, lm.Recall, lm.NDCG, 100*known)
	return nil
}
