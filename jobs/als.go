package jobs

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"
	"gonum.org/v1/gonum/mat"
)

// Solvers of the per-row least-squares problems.
const (
	SolverCG       = "cg"       // a few conjugate-gradient steps, warm-started (the fast path)
	SolverCholesky = "cholesky" // an exact solve per row (the reference)
)

// ALSOptions configure TrainALS. A nil *ALSOptions is the defaults.
type ALSOptions struct {
	Factors    int     // default 64
	Iterations int     // default 15
	Alpha      float32 // confidence c = 1 + Alpha*r; default DefaultAlpha
	Lambda     float32 // L2 regularisation; default DefaultLambda
	// WeightedLambda scales a row's regularisation by its number of observed entries (ALS-WR,
	// Zhou et al. 2008, as Spark MLlib does), so one lambda suits data of any density.
	WeightedLambda bool
	Seed           uint64 // initial factors; default 1
	Solver         string // SolverCG (default) or SolverCholesky
	CGSteps        int    // CG steps per row and half-iteration; default 3
	Workers        int    // parallelism; default GOMAXPROCS
	// InitItems, when set, holds starting item factors (Factors per item; a warm start). Rows
	// that are all zero get random factors.
	InitItems []float32
	// Progress, when set, is called after every iteration.
	Progress func(IterationInfo)
	// ComputeLoss computes the training loss after each iteration (a pass over the data as costly
	// as a CG step); Progress then reports it.
	ComputeLoss bool
}

// Defaults chosen on generated data (see DESIGN-NOTES.md).
const (
	DefaultFactors    = 64
	DefaultIterations = 15
	DefaultAlpha      = 3
	DefaultLambda     = 80
	DefaultCGSteps    = 3
)

func (o *ALSOptions) resolve() (ALSOptions, error) {
	var r ALSOptions
	if o != nil {
		r = *o
	}
	if r.Factors == 0 {
		r.Factors = DefaultFactors
	}
	if r.Iterations == 0 {
		r.Iterations = DefaultIterations
	}
	if r.Alpha == 0 {
		r.Alpha = DefaultAlpha
	}
	if r.Lambda == 0 {
		r.Lambda = DefaultLambda
	}
	if r.Seed == 0 {
		r.Seed = 1
	}
	if r.Solver == "" {
		r.Solver = SolverCG
	}
	if r.CGSteps == 0 {
		r.CGSteps = DefaultCGSteps
	}
	if r.Workers <= 0 {
		r.Workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case r.Factors < 1 || r.Factors > 1024:
		return r, badParam("factors must be between 1 and 1024, not %d", r.Factors)
	case r.Iterations < 0:
		return r, badParam("iterations must not be negative")
	case r.Alpha < 0 || math.IsNaN(float64(r.Alpha)) || math.IsInf(float64(r.Alpha), 0):
		return r, badParam("alpha must be a non-negative number")
	case r.Lambda < 0 || math.IsNaN(float64(r.Lambda)) || math.IsInf(float64(r.Lambda), 0):
		return r, badParam("lambda must be a non-negative number")
	case r.Solver != SolverCG && r.Solver != SolverCholesky:
		return r, badParam("solver %q: want cg or cholesky", r.Solver)
	case r.CGSteps < 1:
		return r, badParam("CG steps must be at least 1")
	}
	return r, nil
}

// IterationInfo is reported after each iteration.
type IterationInfo struct {
	Iteration int     // from 1
	Loss      float64 // the training loss per observed pair (NaN unless ComputeLoss)
	Seconds   float64 // of this iteration
	NNZ       int     // observed (user, item) pairs
}

// Model holds ALS factors: Users[u*Factors:(u+1)*Factors] is user u's vector, likewise Items.
type Model struct {
	Factors int
	Users   []float32
	Items   []float32
}

// UserVec and ItemVec are one row of factors.
func (m *Model) UserVec(u int) []float32 { return m.Users[u*m.Factors : (u+1)*m.Factors] }
func (m *Model) ItemVec(i int) []float32 { return m.Items[i*m.Factors : (i+1)*m.Factors] }

// chunkRows is the unit of parallel work: fixed, so that results do not depend on the number of
// workers (each row's solve depends only on the other side, and partial sums are added in chunk
// order).
const chunkRows = 256

// TrainALS fits implicit-feedback ALS (Hu, Koren and Volinsky 2008) to r: it minimises
//
//	Σ_{u,i} c_ui (p_ui - x_u·y_i)² + λ (Σ_u |x_u|² + Σ_i |y_i|²)
//
// over all pairs, with p_ui = 1 where r_ui > 0 (else 0) and c_ui = 1 + α r_ui, alternating
// exact (Cholesky) or approximate (CG) solves of the users given the items and the items given
// the users. Each half-iteration computes the Gram matrix YᵀY once; a row's system is then
// (YᵀY + λI + Σ_{i∈row} (c_ui-1) y_i y_iᵀ) x = Σ_{i∈row} c_ui y_i, touching only the row's
// observed entries.
//
// The result is deterministic for opts.Seed, whatever the number of workers.
func TrainALS(ctx context.Context, r *Ratings, opts *ALSOptions) (*Model, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	k := o.Factors
	m := &Model{Factors: k, Users: make([]float32, r.NUsers*k), Items: make([]float32, r.NItems*k)}
	rng := rand.New(rand.NewPCG(o.Seed, 1))
	scale := 1 / math.Sqrt(float64(k))
	for i := range m.Items {
		m.Items[i] = float32(rng.NormFloat64() * scale)
	}
	for i := range m.Users {
		m.Users[i] = float32(rng.NormFloat64() * scale)
	}
	if o.InitItems != nil {
		if len(o.InitItems) != len(m.Items) {
			return nil, badParam("initial item factors: %d values for %d items of %d factors", len(o.InitItems), r.NItems, k)
		}
		for i := range r.NItems {
			row := o.InitItems[i*k : (i+1)*k]
			zero := true
			for _, v := range row {
				if v != 0 {
					zero = false
					break
				}
			}
			if !zero {
				copy(m.Items[i*k:(i+1)*k], row)
			}
		}
	}
	s := newSolver(&o)
	for it := 1; it <= o.Iterations; it++ {
		t0 := time.Now()
		if err := s.solve(ctx, m.Users, m.Items, &r.ByUser); err != nil {
			return nil, err
		}
		if err := s.solve(ctx, m.Items, m.Users, &r.ByItem); err != nil {
			return nil, err
		}
		info := IterationInfo{Iteration: it, Loss: math.NaN(), Seconds: time.Since(t0).Seconds(), NNZ: r.ByUser.NNZ()}
		if o.ComputeLoss {
			l, err := Loss(ctx, r, m, o.Alpha, o.Lambda, o.WeightedLambda)
			if err != nil {
				return nil, err
			}
			info.Loss = l
		}
		if o.Progress != nil {
			o.Progress(info)
		}
	}
	return m, nil
}

type solver struct {
	o *ALSOptions
}

func newSolver(o *ALSOptions) *solver { return &solver{o: o} }

// gram is YᵀY + λI as a k×k float32 matrix, summed in float64 per fixed chunk and the chunks in
// order.
func gram(ctx context.Context, y []float32, k int, lambda float32, workers int) ([]float32, error) {
	n := len(y) / k
	nChunks := (n + chunkRows*4 - 1) / (chunkRows * 4)
	parts := make([][]float64, nChunks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for c := range nChunks {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			// float32 within a chunk (SSE axpy on the upper triangle), float64 across chunks.
			acc32 := make([]float32, k*k)
			lo, hi := c*chunkRows*4, min(n, (c+1)*chunkRows*4)
			for row := lo; row < hi; row++ {
				v := y[row*k : (row+1)*k]
				for a := range k {
					if v[a] != 0 {
						axpy(v[a], v[a:], acc32[a*k+a:(a+1)*k])
					}
				}
			}
			acc := make([]float64, k*k)
			for i, v := range acc32 {
				acc[i] = float64(v)
			}
			parts[c] = acc
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sum := make([]float64, k*k)
	for _, p := range parts {
		for i, v := range p {
			sum[i] += v
		}
	}
	out := make([]float32, k*k)
	for a := range k {
		for b := a; b < k; b++ {
			out[a*k+b] = float32(sum[a*k+b])
			out[b*k+a] = out[a*k+b]
		}
		out[a*k+a] += lambda
	}
	return out, nil
}

// solve updates every row of x (the side being solved) from y, given the ratings by x's rows.
func (s *solver) solve(ctx context.Context, x, y []float32, rm *CSR) error {
	k := s.o.Factors
	yty, err := gram(ctx, y, k, 0, s.o.Workers)
	if err != nil {
		return err
	}
	n := len(rm.Indptr) - 1
	nChunks := (n + chunkRows - 1) / chunkRows
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.o.Workers)
	next := make(chan int, nChunks)
	for c := range nChunks {
		next <- c
	}
	close(next)
	for range min(s.o.Workers, nChunks) {
		g.Go(func() error {
			ws := newWorkspace(k, s.o.Solver == SolverCholesky)
			for c := range next {
				if err := gctx.Err(); err != nil {
					return err
				}
				for row := c * chunkRows; row < min(n, (c+1)*chunkRows); row++ {
					cols, vals := rm.Row(row)
					xr := x[row*k : (row+1)*k]
					reg := rowLambda(s.o.Lambda, s.o.WeightedLambda, len(cols))
					if s.o.Solver == SolverCholesky {
						if err := ws.cholesky(xr, y, yty, reg, cols, vals, s.o.Alpha); err != nil {
							return err
						}
					} else {
						ws.cg(xr, y, yty, reg, cols, vals, s.o.Alpha, s.o.CGSteps)
					}
				}
			}
			return nil
		})
	}
	return g.Wait()
}

type workspace struct {
	k         int
	r, p, ap  []float32
	ybuf      []float32 // the row's item vectors, gathered once per row
	a64, b64  []float64
	sym       *mat.SymDense
	chol      mat.Cholesky
	bvec, sol *mat.VecDense
}

func newWorkspace(k int, exact bool) *workspace {
	w := &workspace{k: k, r: make([]float32, k), p: make([]float32, k), ap: make([]float32, k)}
	if exact {
		w.a64 = make([]float64, k*k)
		w.b64 = make([]float64, k)
		w.sym = mat.NewSymDense(k, w.a64)
		w.bvec = mat.NewVecDense(k, w.b64)
		w.sol = mat.NewVecDense(k, nil)
	}
	return w
}

// cg runs steps conjugate-gradient iterations on row x's normal equations, starting from x (as
// the implicit library's least_squares_cg does). A·v is YᵀY·v + Σ (c-1)(y_i·v) y_i, never
// forming A.
func (w *workspace) cg(x, y, yty []float32, reg float32, cols []int32, vals []float32, alpha float32, steps int) {
	k := w.k
	r, p, ap := w.r, w.p, w.ap
	// Gather the row's item vectors: the CG steps read them 1+steps times, and on large item sets
	// each read of a scattered row is a cache miss.
	if need := len(cols) * k; cap(w.ybuf) < need {
		w.ybuf = make([]float32, need)
	}
	yb := w.ybuf[:len(cols)*k]
	for j, c := range cols {
		copy(yb[j*k:(j+1)*k], y[int(c)*k:(int(c)+1)*k])
	}
	// r = b - A x = Σ c y_i - YᵀY x - Σ (c-1)(y_i·x) y_i
	matvec(k, yty, x, r)
	for i := range r {
		r[i] = -r[i] - reg*x[i]
	}
	for j := range cols {
		yi := yb[j*k : (j+1)*k]
		conf := alpha * vals[j]
		axpy((1+conf)-conf*dot(yi, x), yi, r)
	}
	copy(p, r)
	rsold := dot(r, r)
	if rsold < 1e-20 {
		return
	}
	for range steps {
		matvec(k, yty, p, ap)
		axpy(reg, p, ap)
		for j := range cols {
			yi := yb[j*k : (j+1)*k]
			axpy(alpha*vals[j]*dot(yi, p), yi, ap)
		}
		pap := dot(p, ap)
		if pap <= 0 {
			return
		}
		a := rsold / pap
		axpy(a, p, x)
		axpy(-a, ap, r)
		rsnew := dot(r, r)
		if rsnew < 1e-20 {
			return
		}
		beta := rsnew / rsold
		for i := range p {
			p[i] = r[i] + beta*p[i]
		}
		rsold = rsnew
	}
}

// cholesky solves row x's normal equations exactly, in float64 (the reference solver).
func (w *workspace) cholesky(x, y, yty []float32, reg float32, cols []int32, vals []float32, alpha float32) error {
	k := w.k
	for i, v := range yty {
		w.a64[i] = float64(v)
	}
	for a := range k {
		w.a64[a*k+a] += float64(reg)
	}
	clear(w.b64)
	for j, c := range cols {
		yi := y[int(c)*k : (int(c)+1)*k]
		conf := float64(alpha) * float64(vals[j])
		for a := range k {
			ya := float64(yi[a])
			w.b64[a] += (1 + conf) * ya
			row := w.a64[a*k : (a+1)*k]
			for b := range k {
				row[b] += conf * ya * float64(yi[b])
			}
		}
	}
	if !w.chol.Factorize(w.sym) {
		return fmt.Errorf("als: a row's system is not positive definite; use a positive --lambda")
	}
	if err := w.chol.SolveVecTo(w.sol, w.bvec); err != nil {
		return fmt.Errorf("als: exact solve: %w", err)
	}
	for a := range k {
		x[a] = float32(w.sol.AtVec(a))
	}
	return nil
}

// Loss is the objective TrainALS minimises, divided by the number of observed pairs:
// Σ_u x_uᵀ(YᵀY)x_u over all pairs as if unobserved, corrected on the observed ones by
// c(1-s)² - s², plus λ(|X|²+|Y|²). Summed in float64, in chunk order.
func Loss(ctx context.Context, r *Ratings, m *Model, alpha, lambda float32, weighted bool) (float64, error) {
	k := m.Factors
	yty, err := gram(ctx, m.Items, k, 0, runtime.GOMAXPROCS(0))
	if err != nil {
		return 0, err
	}
	n := r.NUsers
	nChunks := (n + chunkRows - 1) / chunkRows
	parts := make([]float64, nChunks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for c := range nChunks {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			tmp := make([]float32, k)
			total := 0.0
			for u := c * chunkRows; u < min(n, (c+1)*chunkRows); u++ {
				xu := m.UserVec(u)
				matvec(k, yty, xu, tmp)
				cols, vals := r.ByUser.Row(u)
				total += float64(dot(xu, tmp)) + float64(rowLambda(lambda, weighted, len(cols)))*float64(dot(xu, xu))
				for j, i := range cols {
					s := float64(dot(xu, m.ItemVec(int(i))))
					conf := 1 + float64(alpha)*float64(vals[j])
					total += conf*(1-s)*(1-s) - s*s
				}
			}
			parts[c] = total
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	total := 0.0
	for _, p := range parts {
		total += p
	}
	for i := range r.NItems {
		yi := m.ItemVec(i)
		n := int(r.ByItem.Indptr[i+1] - r.ByItem.Indptr[i])
		total += float64(rowLambda(lambda, weighted, n)) * float64(dot(yi, yi))
	}
	return total / float64(max(1, r.ByUser.NNZ())), nil
}

// rowLambda is a row's regularisation: lambda, times the row's observed entries (at least 1)
// when weighted.
func rowLambda(lambda float32, weighted bool, n int) float32 {
	if weighted {
		return lambda * float32(max(n, 1))
	}
	return lambda
}
