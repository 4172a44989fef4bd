package jobs

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"
)

// Neighbor is one entry of a top-K list.
type Neighbor struct {
	Index int32
	Score float32
}

// LSHOptions configure SimilarItems. A nil *LSHOptions is the defaults.
type LSHOptions struct {
	Tables int    // hash tables; default 16
	Bits   int    // hyperplanes per table; default log2(n), between 4 and 24
	Probes int    // extra buckets probed per table, least-certain bits flipped first; default Bits
	Seed   uint64 // the hyperplanes; default 1
	// MaxCandidates caps the exact cosines computed per item; default 10% of the items (at
	// least 2K), so at most 10% of all pairs are ever compared.
	MaxCandidates int
	Workers       int
}

// LSHStats says how much exact work SimilarItems did.
type LSHStats struct {
	Items        int     `json:"items"`
	Tables       int     `json:"tables"`
	Bits         int     `json:"bits"`
	Probes       int     `json:"probes"`
	Candidates   int64   `json:"candidates"`    // exact cosines computed
	Visits       int64   `json:"visits"`        // bucket entries looked at (candidates and repeats)
	PairFraction float64 `json:"pair_fraction"` // Candidates / (n·(n-1))
}

// SimilarItems finds each item's top-k most cosine-similar items with bucketed locality-sensitive
// hashing, re-ranked by exact cosine.
//
// The hash is signed random projections (SimHash, Charikar 2002): Bits random Gaussian
// hyperplanes per table, one bit per side. Two vectors at angle θ agree on a bit with
// probability 1-θ/π, so buckets collect vectors by angle, which is exactly cosine similarity on
// the normalised factors: the score we rank by. Spark's BucketedRandomProjectionLSH buckets
// Euclidean distance instead, which on unit vectors orders the same but needs a bucket width
// tuned to the data's scale; sign bits need none. To reach high recall with few tables we probe,
// besides a vector's own bucket, the buckets obtained by flipping its least certain bits (those
// with the smallest |projection|), as in multi-probe LSH (Lv et al. 2007), nearest first. The
// candidates (deduplicated, at most MaxCandidates per item) are scored by exact cosine.
//
// factors holds n vectors of k values. The result is deterministic for Seed.
func SimilarItems(ctx context.Context, factors []float32, k, topK int, opts *LSHOptions) ([][]Neighbor, LSHStats, error) {
	n := len(factors) / k
	o := LSHOptions{}
	if opts != nil {
		o = *opts
	}
	if o.Tables <= 0 {
		o.Tables = 16
	}
	if o.Bits <= 0 {
		// About one bucket per item: factors are clustered, so buckets are far from uniform, and
		// the probes and the candidate budget bound the work (measured: DESIGN-NOTES.md).
		o.Bits = min(24, max(4, int(math.Round(math.Log2(float64(max(n, 2)))))))
	}
	if o.Probes <= 0 {
		o.Probes = o.Bits
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.MaxCandidates <= 0 {
		o.MaxCandidates = max((n-1)/10, 2*topK)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	st := LSHStats{Items: n, Tables: o.Tables, Bits: o.Bits, Probes: o.Probes}
	unit := normalised(factors, k)

	// Hyperplanes: Tables*Bits vectors of k Gaussians.
	rng := rand.New(rand.NewPCG(o.Seed, 2))
	planes := make([]float32, o.Tables*o.Bits*k)
	for i := range planes {
		planes[i] = float32(rng.NormFloat64())
	}
	nb := o.Tables * o.Bits
	proj := make([]float32, n*nb) // every item's projections, kept for probing
	codes := make([]uint32, n*o.Tables)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Workers)
	for c := 0; c < n; c += 1024 {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			for i := c; i < min(n, c+1024); i++ {
				p := proj[i*nb : (i+1)*nb]
				matvecRows(nb, k, planes, unit[i*k:(i+1)*k], p)
				for t := range o.Tables {
					var code uint32
					for b := range o.Bits {
						if p[t*o.Bits+b] > 0 {
							code |= 1 << b
						}
					}
					codes[i*o.Tables+t] = code
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, st, err
	}
	// Buckets: per table, items grouped by code with a counting sort; bucket b is
	// items[start[b]:start[b+1]], items ascending within it. Up to 2^20 codes the offsets are a
	// dense array (a map lookup per probe was a quarter of the query time); above, a map.
	type table struct {
		items []int32
		dense []int32
		start map[uint32][2]int32
	}
	bucket := func(tb *table, code uint32) (int32, int32) {
		if tb.dense != nil {
			return tb.dense[code], tb.dense[code+1]
		}
		se := tb.start[code]
		return se[0], se[1]
	}
	tables := make([]table, o.Tables)
	for t := range o.Tables {
		items := make([]int32, n)
		if o.Bits <= 20 {
			dense := make([]int32, (1<<o.Bits)+1)
			for i := range n {
				dense[codes[i*o.Tables+t]+1]++
			}
			for b := 1; b < len(dense); b++ {
				dense[b] += dense[b-1]
			}
			next := slices.Clone(dense[:len(dense)-1])
			for i := range n {
				c := codes[i*o.Tables+t]
				items[next[c]] = int32(i)
				next[c]++
			}
			tables[t] = table{items: items, dense: dense}
			continue
		}
		for i := range items {
			items[i] = int32(i)
		}
		slices.SortFunc(items, func(a, b int32) int {
			return cmp.Or(cmp.Compare(codes[int(a)*o.Tables+t], codes[int(b)*o.Tables+t]), cmp.Compare(a, b))
		})
		start := map[uint32][2]int32{}
		for j := 0; j < n; {
			code := codes[int(items[j])*o.Tables+t]
			e := j
			for e < n && codes[int(items[e])*o.Tables+t] == code {
				e++
			}
			start[code] = [2]int32{int32(j), int32(e)}
			j = e
		}
		tables[t] = table{items: items, start: start}
	}

	out := make([][]Neighbor, n)
	cands := make([]int64, (n+255)/256)
	visits := make([]int64, (n+255)/256)
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(o.Workers)
	for c := 0; c < n; c += 256 {
		g.Go(func() error {
			seen := make([]uint32, n)
			stamp := uint32(0)
			top := newTopK(topK)
			order := make([]int, o.Bits)
			var probes []uint32
			var count, visited int64
			for i := c; i < min(n, c+256); i++ {
				if i%64 == 0 {
					if err := gctx.Err(); err != nil {
						return err
					}
				}
				stamp++
				seen[i] = stamp
				top.reset()
				qi := unit[i*k : (i+1)*k]
				budget := o.MaxCandidates
				p := proj[i*nb : (i+1)*nb]
				// Round-robin over tables: own buckets first, then probes in order, so the
				// budget is spent on the most likely buckets of every table.
				probeLists := make([][]uint32, o.Tables)
				for t := range o.Tables {
					pt := p[t*o.Bits : (t+1)*o.Bits]
					for b := range order {
						order[b] = b
					}
					slices.SortFunc(order, func(a, b int) int {
						return cmp.Or(cmp.Compare(abs32(pt[a]), abs32(pt[b])), cmp.Compare(a, b))
					})
					code := codes[i*o.Tables+t]
					probes = probes[:0]
					probes = append(probes, code)
					for _, b := range order[:min(o.Probes, o.Bits)] {
						probes = append(probes, code^(1<<b))
					}
					if o.Probes > o.Bits { // then pairs of the least certain bits
						for x := 0; x < o.Bits && len(probes) <= o.Probes; x++ {
							for y := x + 1; y < o.Bits && len(probes) <= o.Probes; y++ {
								probes = append(probes, code^(1<<order[x])^(1<<order[y]))
							}
						}
					}
					probeLists[t] = slices.Clone(probes)
				}
			probe:
				for r := 0; r <= o.Probes; r++ {
					for t := range o.Tables {
						if r >= len(probeLists[t]) {
							continue
						}
						lo, hi := bucket(&tables[t], probeLists[t][r])
						visited += int64(hi - lo)
						for _, j := range tables[t].items[lo:hi] {
							if seen[j] == stamp {
								continue
							}
							seen[j] = stamp
							top.push(j, dot(qi, unit[int(j)*k:(int(j)+1)*k]))
							count++
							budget--
							if budget <= 0 {
								break probe
							}
						}
					}
				}
				out[i] = top.sorted()
			}
			cands[c/256] = count
			visits[c/256] = visited
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, st, err
	}
	for i, c := range cands {
		st.Candidates += c
		st.Visits += visits[i]
	}
	if n > 1 {
		st.PairFraction = float64(st.Candidates) / (float64(n) * float64(n-1))
	}
	return out, st, nil
}

// BruteForceSimilar is the exact top-k by cosine for the listed query items (all when nil): the
// reference SimilarItems is measured against.
func BruteForceSimilar(ctx context.Context, factors []float32, k, topK int, queries []int32) ([][]Neighbor, error) {
	n := len(factors) / k
	unit := normalised(factors, k)
	if queries == nil {
		queries = make([]int32, n)
		for i := range queries {
			queries[i] = int32(i)
		}
	}
	out := make([][]Neighbor, len(queries))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for c := 0; c < len(queries); c += 64 {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			scores := make([]float32, n)
			top := newTopK(topK)
			for qi := c; qi < min(len(queries), c+64); qi++ {
				q := queries[qi]
				matvecRows(n, k, unit, unit[int(q)*k:(int(q)+1)*k], scores)
				top.reset()
				for j, s := range scores {
					if int32(j) != q {
						top.push(int32(j), s)
					}
				}
				out[qi] = top.sorted()
			}
			return nil
		})
	}
	return out, g.Wait()
}

// normalised is a copy of the rows scaled to unit length (zero rows stay zero).
func normalised(f []float32, k int) []float32 {
	u := make([]float32, len(f))
	for i := 0; i < len(f); i += k {
		row := f[i : i+k]
		nrm := float32(math.Sqrt(float64(dot(row, row))))
		if nrm == 0 {
			continue
		}
		for j, v := range row {
			u[i+j] = v / nrm
		}
	}
	return u
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// matvecRows: y = A x for an m×k row-major A.
func matvecRows(m, k int, a, x, y []float32) {
	blasImpl.Sgemv(blasNoTrans, m, k, 1, a, k, x, 1, 0, y, 1)
}

// topK keeps the k best (score, then lower index) in a min-heap.
type topK struct {
	k int
	h []Neighbor
}

func newTopK(k int) *topK { return &topK{k: k, h: make([]Neighbor, 0, k)} }

func (t *topK) reset() { t.h = t.h[:0] }

func worse(a, b Neighbor) bool { return a.Score < b.Score || a.Score == b.Score && a.Index > b.Index }

func (t *topK) push(i int32, s float32) {
	if t.k <= 0 {
		return
	}
	n := Neighbor{i, s}
	if len(t.h) < t.k {
		t.h = append(t.h, n)
		for j := len(t.h) - 1; j > 0; {
			p := (j - 1) / 2
			if !worse(t.h[j], t.h[p]) {
				break
			}
			t.h[j], t.h[p] = t.h[p], t.h[j]
			j = p
		}
		return
	}
	if !worse(t.h[0], n) {
		return
	}
	t.h[0] = n
	for j := 0; ; {
		l, r, m := 2*j+1, 2*j+2, j
		if l < len(t.h) && worse(t.h[l], t.h[m]) {
			m = l
		}
		if r < len(t.h) && worse(t.h[r], t.h[m]) {
			m = r
		}
		if m == j {
			break
		}
		t.h[j], t.h[m] = t.h[m], t.h[j]
		j = m
	}
}

// sorted is a copy of the kept entries, best first.
func (t *topK) sorted() []Neighbor {
	out := slices.Clone(t.h)
	slices.SortFunc(out, func(a, b Neighbor) int {
		if worse(a, b) {
			return 1
		}
		if worse(b, a) {
			return -1
		}
		return 0
	})
	return out
}
