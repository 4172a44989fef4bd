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
