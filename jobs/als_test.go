package jobs

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

// tinyRatings is a hand-built 4×5 matrix.
func tinyRatings() *Ratings {
	users := []int32{0, 0, 1, 1, 1, 2, 3, 3, 0}
	items := []int32{0, 1, 1, 2, 3, 4, 0, 4, 0}
	w := []float32{1, 2, 1, 1, 3, 1, 2, 1, 1} // (0,0) twice: summed to 2
	return NewRatings(4, 5, users, items, w)
}

func TestRatingsAggregates(t *testing.T) {
	r := tinyRatings()
	cols, vals := r.ByUser.Row(0)
	if len(cols) != 2 || cols[0] != 0 || vals[0] != 2 || cols[1] != 1 || vals[1] != 2 {
		t.Fatalf("user 0: %v %v", cols, vals)
	}
	cols, vals = r.ByItem.Row(4)
	if len(cols) != 2 || cols[0] != 2 || cols[1] != 3 || vals[1] != 1 {
		t.Fatalf("item 4: %v %v", cols, vals)
	}
}

// TestHalfStepMatchesDirectSolve: one user half-step, CG with enough steps and Cholesky, against
// the dense textbook formula x_u = (YᵀC_uY + λI)⁻¹ YᵀC_u p_u over all items.
func TestHalfStepMatchesDirectSolve(t *testing.T) {
	r := tinyRatings()
	const k, alpha, lambda = 3, 2.0, 0.5
	rng := rand.New(rand.NewPCG(7, 7))
	y := make([]float32, r.NItems*k)
	for i := range y {
		y[i] = float32(rng.NormFloat64())
	}
	want := make([][]float64, r.NUsers)
	for u := range r.NUsers {
		c := make([]float64, r.NItems)
		p := make([]float64, r.NItems)
		for i := range c {
			c[i] = 1
		}
		cols, vals := r.ByUser.Row(u)
		for j, i := range cols {
			c[i] = 1 + alpha*float64(vals[j])
			p[i] = 1
		}
		a := mat.NewDense(k, k, nil)
		b := mat.NewVecDense(k, nil)
		for i := range r.NItems {
			for x := range k {
				for z := range k {
					a.Set(x, z, a.At(x, z)+c[i]*float64(y[i*k+x])*float64(y[i*k+z]))
				}
				b.SetVec(x, b.AtVec(x)+c[i]*p[i]*float64(y[i*k+x]))
			}
		}
		for x := range k {
			a.Set(x, x, a.At(x, x)+lambda)
		}
		var sol mat.VecDense
		if err := sol.SolveVec(a, b); err != nil {
			t.Fatal(err)
		}
		want[u] = []float64{sol.AtVec(0), sol.AtVec(1), sol.AtVec(2)}
	}
	for _, solverName := range []string{SolverCholesky, SolverCG} {
		o, _ := (&ALSOptions{Factors: k, Alpha: alpha, Lambda: lambda, Solver: solverName, CGSteps: 10}).resolve()
		x := make([]float32, r.NUsers*k)
		if err := newSolver(&o).solve(context.Background(), x, y, &r.ByUser); err != nil {
			t.Fatal(err)
		}
		for u := range r.NUsers {
			for f := range k {
				if d := math.Abs(float64(x[u*k+f]) - want[u][f]); d > 1e-4 {
					t.Errorf("%s: user %d factor %d: got %g, want %g", solverName, u, f, x[u*k+f], want[u][f])
				}
			}
		}
	}
}

func genRatings(t testing.TB, opts *GenOptions) (*Dataset, *Ratings) {
	t.Helper()
	d, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	in := FromDataset(d)
	r, _ := in.Ratings(DefaultWeights(), 0, false, nil)
	return d, r
}

func TestCGMatchesCholeskyAndLossNeverIncreases(t *testing.T) {
	_, r := genRatings(t, &GenOptions{Users: 300, Items: 200, Interactions: 8000, Seed: 3})
	ctx := context.Background()
	losses := map[string][]float64{}
	for _, s := range []string{SolverCholesky, SolverCG} {
		_, err := TrainALS(ctx, r, &ALSOptions{Factors: 16, Iterations: 15, Solver: s, ComputeLoss: true,
			Progress: func(i IterationInfo) { losses[s] = append(losses[s], i.Loss) }})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(losses[s]); i++ {
			if losses[s][i] > losses[s][i-1]*(1+1e-5) {
				t.Errorf("%s: loss went up at iteration %d: %v", s, i+1, losses[s])
			}
		}
	}
	ch, cg := losses[SolverCholesky], losses[SolverCG]
	t.Logf("cholesky %.5f cg %.5f", ch, cg)
	if rel := math.Abs(cg[len(cg)-1]-ch[len(ch)-1]) / ch[len(ch)-1]; rel > 0.01 {
		t.Errorf("CG's final loss %.5f is %.2f%% from Cholesky's %.5f", cg[len(cg)-1], 100*rel, ch[len(ch)-1])
	}
}

func TestTrainDeterministic(t *testing.T) {
	_, r := genRatings(t, &GenOptions{Users: 300, Items: 200, Interactions: 5000, Seed: 4})
	a, err := TrainALS(context.Background(), r, &ALSOptions{Factors: 8, Iterations: 3, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := TrainALS(context.Background(), r, &ALSOptions{Factors: 8, Iterations: 3, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Items {
		if a.Items[i] != b.Items[i] {
			t.Fatalf("item factor %d differs between 1 and 4 workers: %g vs %g", i, a.Items[i], b.Items[i])
		}
	}
}

func TestAggregateWeights(t *testing.T) {
	const day = int64(24 * 3600 * 1e6)
	in := &Interactions{
		UserIDs: []string{"u"}, ItemIDs: []string{"a", "b"}, TypeNames: []string{"view", "purchase", "like"},
		User: []int32{0, 0, 0, 0}, Item: []int32{0, 0, 1, 1}, Type: []uint16{0, 1, 2, 0},
		Time:  []int64{0, 10 * day, 10 * day, 0},
		Value: []float64{math.NaN(), 4, -2, 2.5},
	}
	p := in.Aggregate(DefaultWeights(), 0, false)
	if p.Weight[0] != 6 || p.Weight[1] != 2 || p.Last[0] != 10*day { // view 1 + purchase 5; like (unknown) 1 + view 1
		t.Fatalf("by type: %v %v", p.Weight, p.Last)
	}
	p = in.Aggregate(DefaultWeights(), 0, true)
	if p.Weight[0] != 5 || p.Weight[1] != 2.5 { // null counts 1, negative 0
		t.Fatalf("by value: %v", p.Weight)
	}
	p = in.Aggregate(map[string]float32{"view": 1, "purchase": 1, "like": 1}, time.Duration(10*day)*time.Microsecond, false)
	if math.Abs(float64(p.Weight[0])-1.5) > 1e-6 || math.Abs(float64(p.Weight[1])-1.5) > 1e-6 { // 0.5 + 1 each
		t.Fatalf("half-life: %v", p.Weight)
	}
}

// TestRecommendUsersExact: the blocked product's top-k equals sorting all scores (item sets
// above one block, so blocks and the heap carry-over are exercised).
func TestRecommendUsersExact(t *testing.T) {
	_, r := genRatings(t, &GenOptions{Users: 100, Items: 5000, Interactions: 20000, Seed: 8})
	m, err := TrainALS(context.Background(), r, &ALSOptions{Factors: 8, Iterations: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, err := RecommendUsers(context.Background(), m, &r.ByUser, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	match, total := 0, 0
	for u := range r.NUsers {
		want := recommendReference(m, &r.ByUser, u, 10)
		for i := range want {
			total++
			// float32 sums in another order may swap near-ties: compare by index set and score.
			if i < len(got[u]) && (got[u][i].Index == want[i].Index || math.Abs(float64(got[u][i].Score-want[i].Score)) < 1e-5) {
				match++
			}
		}
	}
	if match != total {
		t.Fatalf("%d of %d top-10 entries match the reference", match, total)
	}
}
