//go:build !race

package jobs

import (
	"context"
	"testing"
)

// Numeric quality checks that the race detector slows tenfold: they are built only without it, and
// scripts/test.sh runs them in a pass of their own without -race (the concurrency they use is
// covered by the race-enabled tests).

// TestSimilarItemsShareCategory: the similar items of an item share its true category far more
// often than chance (the share two random items have).
func TestSimilarItemsShareCategory(t *testing.T) {
	d, r := genRatings(t, &GenOptions{Users: 1500, Items: 800, Interactions: 60000, Seed: 1})
	m, err := TrainALS(context.Background(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	sim, _, err := SimilarItems(context.Background(), m.Items, m.Factors, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	same, total := 0, 0
	for i, l := range sim {
		for _, nb := range l {
			if d.ItemCategory[i] == d.ItemCategory[nb.Index] {
				same++
			}
			total++
		}
	}
	counts := map[int32]int{}
	for _, c := range d.ItemCategory {
		counts[c]++
	}
	chance := 0.0
	for _, n := range counts {
		f := float64(n) / float64(len(d.ItemCategory))
		chance += f * f
	}
	share := float64(same) / float64(total)
	t.Logf("similar items in the same true category: %.3f (chance %.3f, %d categories)", share, chance, len(counts))
	if share < 3*chance {
		t.Errorf("same-category share %.3f is not far above chance %.3f", share, chance)
	}
}

// TestWarmStart: starting from the item factors of a run on older data, a few iterations on the
// new data reach the quality of a full cold run. Logged: the iterations needed.
func TestWarmStart(t *testing.T) {
	ctx := context.Background()
	g := &GenOptions{Users: 1500, Items: 800, Interactions: 60000, Seed: 2}
	d, err := Generate(g)
	if err != nil {
		t.Fatal(err)
	}
	in := FromDataset(d)
	p := in.Aggregate(DefaultWeights(), 0, false)
	s := HoldOut(p, DefaultEvalUsers, 2)
	train := p.Ratings(s.Drop)
	// "Yesterday's" model: the same users' interactions minus the latest 10% of events.
	old := *in
	cut := in.Time[len(in.Time)*9/10]
	n := 0
	for n < len(in.Time) && in.Time[n] < cut {
		n++
	}
	old.User, old.Item, old.Type, old.Time, old.Value = in.User[:n], in.Item[:n], in.Type[:n], in.Time[:n], in.Value[:n]
	prev, err := TrainALS(ctx, old.Aggregate(DefaultWeights(), 0, false).Ratings(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	recall := func(o *ALSOptions) float64 {
		m, err := TrainALS(ctx, train, o)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Evaluate(ctx, m, train, p, s)
		if err != nil {
			t.Fatal(err)
		}
		return res.ALS.Recall
	}
	cold := recall(nil)
	var warmIters int
	var warm float64
	for _, it := range []int{1, 2, 3, 5, 8} {
		warm = recall(&ALSOptions{Iterations: it, InitItems: prev.Items})
		t.Logf("warm start, %d iterations: recall@10 %.4f (cold, %d iterations: %.4f)", it, warm, DefaultIterations, cold)
		if warm >= 0.98*cold {
			warmIters = it
			break
		}
	}
	if warmIters == 0 {
		t.Errorf("warm start did not reach 98%% of the cold run's recall@10 %.4f within 8 iterations (last %.4f)", cold, warm)
	}
}

// TestLSHRecallOnTrainedFactors: the same on item factors ALS learned from generated data.
func TestLSHRecallOnTrainedFactors(t *testing.T) {
	_, r := genRatings(t, &GenOptions{Users: 3000, Items: 2000, Interactions: 60000, Seed: 12})
	m, err := TrainALS(context.Background(), r, &ALSOptions{Factors: 32, Iterations: 5})
	if err != nil {
		t.Fatal(err)
	}
	rec, st, _, _ := lshRecall(t, m.Items, m.Factors, 500)
	t.Logf("trained factors, 2000 items: recall@10 %.3f, %.2f%% of pairs", rec, 100*st.PairFraction)
	if rec < 0.9 {
		t.Errorf("LSH recall@10 %.3f < 0.90", rec)
	}
}
