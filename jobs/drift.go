package jobs

import (
	"cmp"
	"math"
	"slices"
)

// Drift-report sizes.
const (
	driftSimilarTop = 10  // similar items compared per item
	driftTopItems   = 100 // most interacted-with items compared
)

// Drift is how far a run moved from the live model (its Baseline). Every field is computed in
// time linear in this run's data and the live model's output tables; none re-reads an old
// snapshot of the source. A field is nil when the live run lacks what it needs (an output table,
// or the recorded type mix and top items of runs that predate the drift report).
type Drift struct {
	RunID string `json:"run_id"` // the live run compared with
	// SimilarJaccard is the mean, over the items both models have, of the Jaccard overlap of
	// their top-10 similar items (1: the same neighbourhoods).
	SimilarJaccard       *float64 `json:"similar_jaccard,omitempty"`
	SimilarItemsCompared int      `json:"similar_items_compared"`
	// NewUsersShare is the share of this run's users (those it recommends to) the live model
	// has no recommendations for; NewItemsShare the share of this run's items the live model
	// has no factors for.
	NewUsersShare *float64 `json:"new_users_share,omitempty"`
	NewItemsShare *float64 `json:"new_items_share,omitempty"`
	// TypeMixShift is the total variation distance between this run's interaction-type shares
	// and the live run's (0: the same mix; 1: disjoint types).
	TypeMixShift *float64 `json:"type_mix_shift,omitempty"`
	// PopularityShift is 1 - the Jaccard overlap of the 100 most interacted-with items of this
	// run and of the live run (0: the same head).
	PopularityShift *float64 `json:"popularity_shift,omitempty"`
}

// typeMix is the share of each interaction type among in's interactions.
func typeMix(in *Interactions) map[string]float64 {
	counts := make([]int64, len(in.TypeNames))
	for _, t := range in.Type {
		counts[t]++
	}
	out := make(map[string]float64, len(counts))
	for i, c := range counts {
		if c > 0 {
			out[in.TypeNames[i]] = float64(c) / float64(in.Len())
		}
	}
	return out
}

// topItems are the ids of the n items with the most interactions in in, most first (ties by id).
func topItems(in *Interactions, n int) []string {
	counts := make([]int64, len(in.ItemIDs))
	for _, i := range in.Item {
		counts[i]++
	}
	order := make([]int32, 0, len(counts))
	for i, c := range counts {
		if c > 0 {
			order = append(order, int32(i))
		}
	}
	slices.SortFunc(order, func(a, b int32) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(in.ItemIDs[a], in.ItemIDs[b]))
	})
	out := make([]string, min(n, len(order)))
	for j := range out {
		out[j] = in.ItemIDs[order[j]]
	}
	return out
}

// totalVariation is ½ Σ |p(t) - q(t)| over the types of either mix.
func totalVariation(p, q map[string]float64) float64 {
	d := 0.0
	for t, v := range p {
		d += math.Abs(v - q[t])
	}
	for t, v := range q {
		if _, ok := p[t]; !ok {
			d += math.Abs(v)
		}
	}
	return d / 2
}

// jaccard is |a ∩ b| / |a ∪ b| of two sets of distinct ids (1 when both are empty).
func jaccard(a, b []string) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	in := make(map[string]bool, len(a))
	for _, x := range a {
		in[x] = true
	}
	both := 0
	for _, x := range b {
		if in[x] {
			both++
		}
	}
	return float64(both) / float64(len(a)+len(b)-both)
}

// recordedTypeMix and recordedTopItems read a run's recorded metrics (decoded from JSON, or
// as RunALS built them).
func recordedTypeMix(m map[string]any) (map[string]float64, bool) {
	switch v := m[MetricTypeMix].(type) {
	case map[string]float64:
		return v, true
	case map[string]any:
		out := make(map[string]float64, len(v))
		for k, x := range v {
			f, ok := x.(float64)
			if !ok {
				return nil, false
			}
			out[k] = f
		}
		return out, true
	}
	return nil, false
}

func recordedTopItems(m map[string]any) ([]string, bool) {
	switch v := m[MetricTopItems].(type) {
	case []string:
		return v, true
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// liveModel is what the drift report reads of the live run's outputs (nil: not available).
type liveModel struct {
	factors *itemFactors        // item_factors
	similar map[string][]string // similar_items: item -> its top-10
	users   map[string]bool     // user_recommendations: the users it recommends to
}

// driftInputs is this run's side of the drift report.
type driftInputs struct {
	itemIDs, userIDs []string
	recUsers         []int32      // the users this run recommends to
	similar          [][]Neighbor // per item of itemIDs, best first
	typeMix          map[string]float64
	topItems         []string
}

func f64(v float64) *float64 { return &v }

// computeDrift compares this run (in) with the live run b, whose outputs live holds.
func computeDrift(b *Baseline, live *liveModel, in *driftInputs) *Drift {
	d := &Drift{RunID: b.RunID}
	if live.similar != nil {
		sum, n := 0.0, 0
		mine := make([]string, 0, driftSimilarTop)
		for i, id := range in.itemIDs {
			theirs, ok := live.similar[id]
			if !ok || i >= len(in.similar) {
				continue
			}
			mine = mine[:0]
			for _, nb := range in.similar[i][:min(driftSimilarTop, len(in.similar[i]))] {
				mine = append(mine, in.itemIDs[nb.Index])
			}
			sum += jaccard(mine, theirs)
			n++
		}
		d.SimilarItemsCompared = n
		if n > 0 {
			d.SimilarJaccard = f64(sum / float64(n))
		}
	}
	if live.users != nil && len(in.recUsers) > 0 {
		fresh := 0
		for _, u := range in.recUsers {
			if !live.users[in.userIDs[u]] {
				fresh++
			}
		}
		d.NewUsersShare = f64(float64(fresh) / float64(len(in.recUsers)))
	}
	if live.factors != nil && len(in.itemIDs) > 0 {
		fresh := 0
		for _, id := range in.itemIDs {
			if live.factors.lookup(id) < 0 {
				fresh++
			}
		}
		d.NewItemsShare = f64(float64(fresh) / float64(len(in.itemIDs)))
	}
	if mix, ok := recordedTypeMix(b.Metrics); ok {
		d.TypeMixShift = f64(totalVariation(in.typeMix, mix))
	}
	if top, ok := recordedTopItems(b.Metrics); ok {
		d.PopularityShift = f64(1 - jaccard(in.topItems, top))
	}
	return d
}
