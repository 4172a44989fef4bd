package jobs

import (
	"context"
	"os"
	"strconv"
	"testing"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

// evalGenerated trains on a held-out split of a generated data set and evaluates.
func evalGenerated(t testing.TB, g *GenOptions, o *ALSOptions) *EvalResult {
	t.Helper()
	d, err := Generate(g)
	if err != nil {
		t.Fatal(err)
	}
	in := FromDataset(d)
	p := in.Aggregate(DefaultWeights(), 0, false)
	s := HoldOut(p, DefaultEvalUsers, g.Seed)
	train := p.Ratings(s.Drop)
	m, err := TrainALS(context.Background(), train, o)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Evaluate(context.Background(), m, train, p, s)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestQualityOnGeneratedData: over three seeds, ALS's recall@10 is at least 1.5x popularity's and
// at least item-kNN's, with the default parameters. JOBS_QUALITY_SCALE multiplies the size.
func TestQualityOnGeneratedData(t *testing.T) {
	scale := envInt("JOBS_QUALITY_SCALE", 1)
	seeds := []uint64{1, 2, 3}
	if n := envInt("JOBS_QUALITY_SEEDS", 3); n < 3 || raceEnabled {
		if raceEnabled {
			n = 1
		}
		seeds = seeds[:n]
	}
	for _, seed := range seeds {
		g := &GenOptions{Users: 1500 * scale, Items: 800 * scale, Interactions: 60000 * scale, Seed: seed}
		o := &ALSOptions{Factors: envInt("ALS_FACTORS", 0), Iterations: envInt("ALS_ITERS", 0),
			Alpha: float32(envFloat("ALS_ALPHA", 0)), Lambda: float32(envFloat("ALS_LAMBDA", 0)), WeightedLambda: os.Getenv("ALS_WL") != ""}
		res := evalGenerated(t, g, o)
		t.Logf("seed %d: users %d, ALS %+v, popularity %+v, item-kNN %+v", seed, res.Users, res.ALS, res.Popularity, res.ItemKNN)
		if res.ALS.Recall < 1.5*res.Popularity.Recall {
			t.Errorf("seed %d: ALS recall@10 %.4f < 1.5 × popularity's %.4f", seed, res.ALS.Recall, res.Popularity.Recall)
		}
		if res.ALS.Recall < res.ItemKNN.Recall {
			t.Errorf("seed %d: ALS recall@10 %.4f < item-kNN's %.4f", seed, res.ALS.Recall, res.ItemKNN.Recall)
		}
	}
}

// TestSimilarItemsShareCategory: the similar items of an item share its true category far more
// often than chance (the share two random items have).
func TestSimilarItemsShareCategory(t *testing.T) {
	if raceEnabled {
		t.Skip("a numeric quality check, 10x slower under -race; the concurrency it uses is covered by the other tests")
	}
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
	if raceEnabled {
		t.Skip("a numeric quality check, 10x slower under -race; the concurrency it uses is covered by the other tests")
	}
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
