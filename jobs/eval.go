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

// Evaluation defaults: how many users are scored, and the caps on item-kNN's co-occurrence work.
const (
	DefaultEvalUsers     = 10000 // users sampled for the held-out evaluation
	knnHistoryCap        = 200   // a user's most recent items used by item-kNN
	knnCoUsersCap        = 1000  // users sampled per item to count co-occurrences
	knnNeighbors         = 100   // neighbours kept per item
	evalK                = 10
	holdoutMaxPerUser    = 10
	holdoutMinUserPairs  = 3
	holdoutFractionShift = 5 // hold out 1/5 of a user's items
)

// Split is a held-out split: the latest items of a sample of users are taken out of training.
type Split struct {
	Drop  []bool    // per pair of the Pairs: held out
	Users []int32   // the users evaluated, ascending
	Test  [][]int32 // each evaluated user's held-out items
}

// HoldOut holds out each sampled user's latest items (by their latest interaction; 1/5 of the
// user's distinct items, at least 1 and at most 10), for users with at least 3 distinct items.
// At most maxUsers users are sampled (deterministically for seed).
func HoldOut(p *Pairs, maxUsers int, seed uint64) *Split {
	var eligible []int32
	for u := range p.NUsers {
		if p.Indptr[u+1]-p.Indptr[u] >= holdoutMinUserPairs {
			eligible = append(eligible, int32(u))
		}
	}
	if maxUsers > 0 && len(eligible) > maxUsers {
		r := rand.New(rand.NewPCG(seed, 3))
		r.Shuffle(len(eligible), func(a, b int) { eligible[a], eligible[b] = eligible[b], eligible[a] })
		eligible = eligible[:maxUsers]
		slices.Sort(eligible)
	}
	s := &Split{Drop: make([]bool, len(p.Item)), Users: eligible, Test: make([][]int32, len(eligible))}
	for j, u := range eligible {
		lo, hi := p.Indptr[u], p.Indptr[u+1]
		idx := make([]int64, 0, hi-lo)
		for x := lo; x < hi; x++ {
			idx = append(idx, x)
		}
		slices.SortFunc(idx, func(a, b int64) int {
			return cmp.Or(cmp.Compare(p.Last[b], p.Last[a]), cmp.Compare(p.Item[a], p.Item[b]))
		})
		n := min(holdoutMaxPerUser, max(1, len(idx)/holdoutFractionShift))
		for _, x := range idx[:n] {
			s.Drop[x] = true
			s.Test[j] = append(s.Test[j], p.Item[x])
		}
	}
	return s
}

// RankingMetrics are recall@10 and NDCG@10 averaged over the evaluated users.
type RankingMetrics struct {
	Recall float64 `json:"recall_at_10"`
	NDCG   float64 `json:"ndcg_at_10"`
}

// EvalResult compares ALS with two baselines on one split.
type EvalResult struct {
	Users      int            `json:"users"`
	ALS        RankingMetrics `json:"als"`
	Popularity RankingMetrics `json:"popularity"`
	ItemKNN    RankingMetrics `json:"item_knn"`
}

func score(recs [][]Neighbor, test [][]int32) RankingMetrics {
	var m RankingMetrics
	for u, rec := range recs {
		want := map[int32]bool{}
		for _, i := range test[u] {
			want[i] = true
		}
		hits, dcg, idcg := 0, 0.0, 0.0
		for r, n := range rec[:min(evalK, len(rec))] {
			if want[n.Index] {
				hits++
				dcg += 1 / math.Log2(float64(r+2))
			}
		}
		for r := range min(evalK, len(test[u])) {
			idcg += 1 / math.Log2(float64(r+2))
		}
		m.Recall += float64(hits) / float64(min(evalK, len(test[u])))
		m.NDCG += dcg / idcg
	}
	if len(recs) > 0 {
		m.Recall /= float64(len(recs))
		m.NDCG /= float64(len(recs))
	}
	return m
}

// Evaluate scores the model trained on train (the split's training matrix) and the two
// baselines on the split's held-out items.
func Evaluate(ctx context.Context, m *Model, train *Ratings, p *Pairs, s *Split) (*EvalResult, error) {
	res := &EvalResult{Users: len(s.Users)}
	if len(s.Users) == 0 {
		return res, nil
	}
	recs, err := RecommendUsers(ctx, m, &train.ByUser, s.Users, evalK)
	if err != nil {
		return nil, err
	}
	res.ALS = score(recs, s.Test)
	res.Popularity = score(popularityRecs(train, s.Users), s.Test)
	knn, err := itemKNNRecs(ctx, train, p, s)
	if err != nil {
		return nil, err
	}
	res.ItemKNN = score(knn, s.Test)
	return res, nil
}

// popularityRecs ranks items by their number of (training) users, the user's own items excluded.
func popularityRecs(train *Ratings, users []int32) [][]Neighbor {
	order := make([]int32, train.NItems)
	for i := range order {
		order[i] = int32(i)
	}
	deg := func(i int32) int64 { return train.ByItem.Indptr[i+1] - train.ByItem.Indptr[i] }
	slices.SortFunc(order, func(a, b int32) int { return cmp.Or(cmp.Compare(deg(b), deg(a)), cmp.Compare(a, b)) })
	out := make([][]Neighbor, len(users))
	for j, u := range users {
		cols, _ := train.ByUser.Row(int(u))
		for _, i := range order {
			if len(out[j]) == evalK {
				break
			}
			if _, found := slices.BinarySearch(cols, i); !found {
				out[j] = append(out[j], Neighbor{i, float32(deg(i))})
			}
		}
	}
	return out
}

// itemKNNRecs is item-kNN on co-occurrence cosine, as the implicit library's CosineRecommender:
// each item keeps its 100 nearest items by cos(i, j) = users in common / sqrt(users of i · users
// of j) over the binary training matrix (for an item with more than 1,000 users, co-occurrences
// are counted on an evenly spaced sample of 1,000 of them and scaled up), and a user's score for
// j is Σ sim(i, j) over the user's training items i (the 200 most recent at most).
func itemKNNRecs(ctx context.Context, train *Ratings, p *Pairs, s *Split) ([][]Neighbor, error) {
	nbrs, err := itemNeighbors(ctx, train)
	if err != nil {
		return nil, err
	}
	out := make([][]Neighbor, len(s.Users))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for c := 0; c < len(s.Users); c += 64 {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			scores := make([]float32, train.NItems)
			var touched []int32
			top := newTopK(evalK)
			for j := c; j < min(len(s.Users), c+64); j++ {
				u := int(s.Users[j])
				var hist []int64
				for x := p.Indptr[u]; x < p.Indptr[u+1]; x++ {
					if !s.Drop[x] && p.Weight[x] > 0 {
						hist = append(hist, x)
					}
				}
				slices.SortFunc(hist, func(a, b int64) int {
					return cmp.Or(cmp.Compare(p.Last[b], p.Last[a]), cmp.Compare(p.Item[a], p.Item[b]))
				})
				touched = touched[:0]
				for _, x := range hist[:min(len(hist), knnHistoryCap)] {
					for _, nb := range nbrs[p.Item[x]] {
						if scores[nb.Index] == 0 {
							touched = append(touched, nb.Index)
						}
						scores[nb.Index] += nb.Score
					}
				}
				cols, _ := train.ByUser.Row(u)
				top.reset()
				for _, jj := range touched {
					if _, found := slices.BinarySearch(cols, jj); !found {
						top.push(jj, scores[jj])
					}
					scores[jj] = 0
				}
				out[j] = top.sorted()
			}
			return nil
		})
	}
	return out, g.Wait()
}

// itemNeighbors is each item's knnNeighbors most co-occurrence-cosine-similar items.
func itemNeighbors(ctx context.Context, train *Ratings) ([][]Neighbor, error) {
	out := make([][]Neighbor, train.NItems)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for c := 0; c < train.NItems; c += 64 {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			co := make([]float32, train.NItems)
			var touched []int32
			top := newTopK(knnNeighbors)
			for i := c; i < min(train.NItems, c+64); i++ {
				users, _ := train.ByItem.Row(i)
				step, scale := 1, float32(1)
				if len(users) > knnCoUsersCap {
					step = len(users) / knnCoUsersCap
					scale = float32(len(users)) / float32((len(users)+step-1)/step)
				}
				touched = touched[:0]
				for v := 0; v < len(users); v += step {
					items, _ := train.ByUser.Row(int(users[v]))
					for _, jj := range items {
						if co[jj] == 0 {
							touched = append(touched, jj)
						}
						co[jj] += scale
					}
				}
				di := float64(len(users))
				top.reset()
				for _, jj := range touched {
					if int(jj) != i {
						dj := float64(train.ByItem.Indptr[jj+1] - train.ByItem.Indptr[jj])
						top.push(jj, float32(float64(co[jj])/math.Sqrt(di*dj)))
					}
					co[jj] = 0
				}
				out[i] = top.sorted()
			}
			return nil
		})
	}
	return out, g.Wait()
}
