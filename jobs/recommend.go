package jobs

import (
	"context"
	"math"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"
)

// recBlockItems is the item block of the blocked product: 2,048 items × 64 factors × 4 bytes =
// 512 KiB, which stays in a core's L2 cache while a chunk of 64 users is scored against it. A
// matrix-vector product per user over all items instead streams the whole item matrix from
// memory once per user (25 MiB per user at 100,000 items).
const (
	recBlockItems = 2048
	recChunkUsers = 64
)

// RecommendUsers is the exact top-k items by score x_u·y_i for each listed user (every user
// when users is nil), excluding the items of the user's row in have. It is a blocked product:
// per worker, a chunk of 64 users against blocks of 2,048 items, each user keeping a top-k heap
// across blocks, so the result is the exact top-k.
//
// Items are visited in order of decreasing norm, and a user stops at the first block whose
// largest norm |y| cannot beat the user's current k-th score: x·y ≤ |x||y| (Cauchy-Schwarz), so
// no later item can enter the top-k and the result stays exact. ALS item norms follow popularity,
// which is heavy-tailed, so most users stop after a few blocks.
func RecommendUsers(ctx context.Context, m *Model, have *CSR, users []int32, kTop int) ([][]Neighbor, error) {
	k := m.Factors
	nItems := len(m.Items) / k
	if users == nil {
		users = make([]int32, len(m.Users)/k)
		for i := range users {
			users[i] = int32(i)
		}
	}
	out := make([][]Neighbor, len(users))
	if kTop <= 0 {
		return out, nil
	}
	// The items by decreasing norm, copied into that order.
	norms := make([]float32, nItems)
	order := make([]int32, nItems)
	for i := range nItems {
		v := m.ItemVec(i)
		norms[i] = float32(math.Sqrt(float64(dot(v, v))))
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		if norms[a] != norms[b] {
			if norms[a] > norms[b] {
				return -1
			}
			return 1
		}
		return int(a - b)
	})
	sorted := make([]float32, len(m.Items))
	rank := make([]int32, nItems) // item -> position in sorted
	for p, i := range order {
		copy(sorted[p*k:(p+1)*k], m.ItemVec(int(i)))
		rank[i] = int32(p)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for c := 0; c < len(users); c += recChunkUsers {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			chunk := users[c:min(len(users), c+recChunkUsers)]
			tops := make([]*topK, len(chunk))
			xnorm := make([]float32, len(chunk))
			done := make([]bool, len(chunk))
			excl := make([][]int32, len(chunk)) // the user's items as sorted positions, ascending
			for j, u := range chunk {
				tops[j] = newTopK(kTop)
				x := m.UserVec(int(u))
				xnorm[j] = float32(math.Sqrt(float64(dot(x, x))))
				if have != nil {
					cols, _ := have.Row(int(u))
					for _, i := range cols {
						excl[j] = append(excl[j], rank[i])
					}
					slices.Sort(excl[j])
				}
			}
			scores := make([]float32, recBlockItems)
			for b0 := 0; b0 < nItems; b0 += recBlockItems {
				b1 := min(nItems, b0+recBlockItems)
				block := sorted[b0*k : b1*k]
				s := scores[:b1-b0]
				active := false
				for j, u := range chunk {
					top := tops[j]
					if done[j] {
						continue
					}
					// Strictly greater: an item of equal score could still win a tie by index.
					if len(top.h) == kTop && top.h[0].Score > xnorm[j]*norms[order[b0]]*(1+1e-5) {
						done[j] = true
						continue
					}
					active = true
					matvecRows(b1-b0, k, block, m.UserVec(int(u)), s)
					ex := excl[j]
					lo, _ := slices.BinarySearch(ex, int32(b0))
					for _, p := range ex[lo:] {
						if int(p) >= b1 {
							break
						}
						s[int(p)-b0] = float32(math.Inf(-1))
					}
					for p, v := range s {
						// The heap's root is its worst entry: most scores fail this test.
						if len(top.h) == kTop && v < top.h[0].Score {
							continue
						}
						if !math.IsInf(float64(v), -1) {
							top.push(order[b0+p], v)
						}
					}
				}
				if !active {
					break
				}
			}
			for j := range chunk {
				out[c+j] = tops[j].sorted()
			}
			return nil
		})
	}
	return out, g.Wait()
}

// recommendReference is the obvious version RecommendUsers is tested against: all scores of a
// user, sorted.
func recommendReference(m *Model, have *CSR, u int, kTop int) []Neighbor {
	var all []Neighbor
	cols, _ := have.Row(u)
	for i := range len(m.Items) / m.Factors {
		if _, found := slices.BinarySearch(cols, int32(i)); !found {
			all = append(all, Neighbor{int32(i), dotRef(m.UserVec(u), m.ItemVec(i))})
		}
	}
	slices.SortFunc(all, func(a, b Neighbor) int {
		if worse(a, b) {
			return 1
		}
		if worse(b, a) {
			return -1
		}
		return 0
	})
	return all[:min(kTop, len(all))]
}
