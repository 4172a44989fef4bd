package jobs

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"
)

// TestFoldInMatchesEvaluate: folding the evaluation users into a model's own item factors and
// scoring as Evaluate does gives the recall of the model's own user factors; with the item ids
// scrambled (another model's factors for the same ids) it does not.
func TestFoldInMatchesEvaluate(t *testing.T) {
	ctx := context.Background()
	d, err := Generate(&GenOptions{Users: 400, Items: 150, Days: 4, Interactions: 8000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	in := FromDataset(d)
	pairs := in.Aggregate(DefaultWeights(), 0, false)
	split := HoldOut(pairs, 0, 1)
	train := pairs.Ratings(split.Drop)
	m, err := TrainALS(ctx, train, &ALSOptions{Factors: 16, Iterations: 10})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Evaluate(ctx, m, train, pairs, split)
	if err != nil {
		t.Fatal(err)
	}
	got, known, err := FoldIn(ctx, in.ItemIDs, m.Items, m.Factors, DefaultAlpha, DefaultLambda, in.ItemIDs, train, split)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("own user factors: recall %.4f NDCG %.4f; folded in: recall %.4f NDCG %.4f; popularity %.4f",
		ev.ALS.Recall, ev.ALS.NDCG, got.Recall, got.NDCG, ev.Popularity.Recall)
	if known != 1 {
		t.Fatalf("known share %v, want 1 (the same items)", known)
	}
	if math.Abs(got.Recall-ev.ALS.Recall) > 0.02 || math.Abs(got.NDCG-ev.ALS.NDCG) > 0.02 {
		t.Fatalf("folded-in recall/NDCG %.4f/%.4f, the model's own %.4f/%.4f: want within 0.02", got.Recall, got.NDCG, ev.ALS.Recall, ev.ALS.NDCG)
	}
	if ev.ALS.Recall < ev.Popularity.Recall+0.02 {
		t.Fatalf("the model (%.4f) hardly beats popularity (%.4f): the data set is too weak to test fold-in", ev.ALS.Recall, ev.Popularity.Recall)
	}
	// Scrambled ids: the factors belong to other items.
	scrambled := slices.Clone(in.ItemIDs)
	slices.Reverse(scrambled)
	bad, _, err := FoldIn(ctx, scrambled, m.Items, m.Factors, DefaultAlpha, DefaultLambda, in.ItemIDs, train, split)
	if err != nil {
		t.Fatal(err)
	}
	if bad.Recall > ev.ALS.Recall-0.05 {
		t.Fatalf("scrambled ids score %.4f, near the model's %.4f: fold-in does not use the id mapping", bad.Recall, ev.ALS.Recall)
	}
	// Held-out items unknown to the model count as misses: drop half the items from the model.
	half := len(in.ItemIDs) / 2
	part, known, err := FoldIn(ctx, in.ItemIDs[:half], m.Items[:half*m.Factors], m.Factors, DefaultAlpha, DefaultLambda, in.ItemIDs, train, split)
	if err != nil {
		t.Fatal(err)
	}
	if known >= 1 || known <= 0 || part.Recall > got.Recall {
		t.Fatalf("half the items: known %.3f, recall %.4f (all items %.4f)", known, part.Recall, got.Recall)
	}
	if _, _, err := FoldIn(ctx, in.ItemIDs, m.Items[:10], m.Factors, 0, 0, in.ItemIDs, train, split); err == nil {
		t.Fatal("FoldIn with too few factors: no error")
	}
}

// baselineOf is the run res's outputs under out as a Baseline (what the registry builds).
func baselineOf(res *ALSJobResult, id string) *Baseline {
	b := &Baseline{RunID: id, DataUntil: res.DataUntil, Metrics: map[string]any{MetricTypeMix: res.TypeMix, MetricTopItems: res.TopItems}}
	for _, o := range res.Outputs {
		tv := TableVersion{URI: o.URI, Version: o.Version}
		switch o.Name {
		case OutItemFactors:
			b.ItemFactors = tv
		case OutSimilarItems:
			b.SimilarItems = tv
		case OutUserRecommendations:
			b.UserRecommendations = tv
		}
	}
	return b
}

func TestRunALSBaselineAndDrift(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, out := dir+"/events", dir+"/out"
	d, err := Generate(&GenOptions{Users: 300, Items: 150, Days: 4, Interactions: 6000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	writeDatasetTable(t, src, d)
	first, err := RunALS(ctx, smallJob(src, out))
	if err != nil {
		t.Fatal(err)
	}
	if first.Baseline != nil || first.Drift != nil || len(first.TopItems) != 100 || len(first.TypeMix) != 3 {
		t.Fatalf("first run: baseline %v drift %v top items %d type mix %v", first.Baseline, first.Drift, len(first.TopItems), first.TypeMix)
	}
	sum := 0.0
	for _, v := range first.TypeMix {
		sum += v
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Fatalf("type mix %v sums to %v", first.TypeMix, sum)
	}
	base := baselineOf(first, "run-1")
	if base.DataUntil.IsZero() || base.DataUntil.After(time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("data until %v", base.DataUntil)
	}

	// The same data again: no drift, and no comparison on this split (the live model was
	// trained on every held-out interaction).
	o := smallJob(src, out)
	o.Force, o.Baseline = true, base
	again, err := RunALS(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	dr := again.Drift
	if again.Baseline != nil || dr == nil {
		t.Fatalf("rerun with a baseline: baseline %+v drift %v", again.Baseline, dr)
	}
	if dr.SimilarJaccard == nil || *dr.SimilarJaccard < 0.95 || dr.SimilarItemsCompared != again.Items ||
		dr.NewUsersShare == nil || *dr.NewUsersShare != 0 || dr.NewItemsShare == nil || *dr.NewItemsShare != 0 ||
		dr.TypeMixShift == nil || *dr.TypeMixShift > 1e-9 || dr.PopularityShift == nil || *dr.PopularityShift != 0 {
		t.Fatalf("drift of a rerun: %s", js(dr))
	}
	// Without the live run's data horizon every held-out pair is compared (and the live model,
	// trained on them, has the edge).
	unknown := *base
	unknown.DataUntil = time.Time{}
	o.Baseline = &unknown
	if again, err = RunALS(ctx, o); err != nil {
		t.Fatal(err)
	}
	b := again.Baseline
	if b == nil || b.RunID != "run-1" || b.Users != again.Eval.Users || b.HeldOutCompared != 1 || b.HeldOutKnown != 1 ||
		math.Abs(b.CandidateRecall-again.Eval.ALS.Recall) > 1e-9 || b.Recall <= again.Eval.Popularity.Recall/2 {
		t.Fatalf("baseline result %s (eval %+v)", js(b), again.Eval)
	}
	t.Logf("rerun, all pairs compared: %s", js(b))

	// Append the next days' events of a bigger shop: new users and new items.
	d2, err := Generate(&GenOptions{Users: 450, Items: 220, Days: 3, Interactions: 4000, Seed: 6, Start: time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	writeDatasetTable(t, src, d2)
	o = smallJob(src, out)
	o.Baseline = base
	later, err := RunALS(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	dr, b = later.Drift, later.Baseline
	if dr == nil || b == nil {
		t.Fatalf("after an append: baseline %v drift %v", b, dr)
	}
	t.Logf("after an append: recall %.4f; baseline %s; drift %s", later.Eval.ALS.Recall, js(b), js(dr))
	if b.HeldOutCompared <= 0.5 || b.HeldOutCompared > 1 || b.HeldOutKnown <= 0 || b.HeldOutKnown >= 1 || b.Users == 0 || b.Users > later.Eval.Users {
		t.Fatalf("baseline after an append: %s", js(b))
	}
	if *dr.NewUsersShare <= 0 || *dr.NewItemsShare <= 0 || *dr.SimilarJaccard >= 1 || dr.SimilarItemsCompared != first.Items || *dr.PopularityShift <= 0 {
		t.Fatalf("drift after new users and items: %s", js(dr))
	}
	if want := float64(later.Items-first.Items) / float64(later.Items); math.Abs(*dr.NewItemsShare-want) > 1e-9 {
		t.Fatalf("new items share %v, want %v", *dr.NewItemsShare, want)
	}

	// A baseline whose tables are gone: the job still runs, and says why it could not compare.
	o = smallJob(src, dir+"/out3")
	o.Baseline = &Baseline{RunID: "gone", ItemFactors: TableVersion{URI: dir + "/nothing", Version: 3}}
	res, err := RunALS(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Baseline != nil || res.Drift == nil || res.Drift.NewItemsShare != nil || res.Drift.TypeMixShift != nil {
		t.Fatalf("unreadable baseline: %+v %+v", res.Baseline, res.Drift)
	}
}

func TestDriftHelpers(t *testing.T) {
	if got := jaccard([]string{"a", "b", "c"}, []string{"b", "c", "d"}); got != 0.5 {
		t.Fatalf("jaccard %v", got)
	}
	if got := totalVariation(map[string]float64{"view": 0.8, "buy": 0.2}, map[string]float64{"view": 0.5, "cart": 0.5}); math.Abs(got-0.5) > 1e-12 {
		t.Fatalf("total variation %v, want 0.5", got)
	}
	in := &Interactions{ItemIDs: []string{"x", "y", "z"}, Item: []int32{2, 1, 2, 0, 1, 2}}
	if got := topItems(in, 2); !slices.Equal(got, []string{"z", "y"}) {
		t.Fatalf("top items %v", got)
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
