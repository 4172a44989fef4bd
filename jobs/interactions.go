package jobs

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lakehouse/lake/internal/units"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// Interactions are the rows of an interaction table a job needs, with string ids interned to
// dense indices (in order of first appearance in the scan, which is deterministic).
type Interactions struct {
	UserIDs   []string // index -> id as in the source
	ItemIDs   []string
	TypeNames []string
	User      []int32
	Item      []int32
	Type      []uint16
	Time      []int64   // unix microseconds
	Value     []float64 // NaN for null; nil when not read
	Skipped   int64     // rows with a null user, item, type or time
}

// Len is the number of interactions.
func (in *Interactions) Len() int { return len(in.User) }

// InteractionColumns are the columns ALS reads.
var InteractionColumns = []string{"user_id", "item_id", "interaction_type", "timestamp"}

// ReadInteractions scans snap (a pinned snapshot of t) for the interaction columns, and value when
// withValue. A source without those columns is a *MissingColumnsError.
func ReadInteractions(ctx context.Context, t *table.Table, snap *txlog.Snapshot, withValue bool) (*Interactions, error) {
	cols := slices.Clone(InteractionColumns)
	if withValue {
		cols = append(cols, "value")
	}
	var missing []string
	for _, c := range cols {
		if _, ok := snap.Schema().Field(c); !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, &MissingColumnsError{URI: t.URI(), Missing: missing}
	}
	scan, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Columns: cols})
	if err != nil {
		return nil, err
	}
	in := &Interactions{}
	if withValue {
		in.Value = []float64{}
	}
	users, items, types := map[string]int32{}, map[string]int32{}, map[string]uint16{}
	intern := func(m map[string]int32, ids *[]string, s string) int32 {
		if v, ok := m[s]; ok {
			return v
		}
		s = strings.Clone(s) // s points into an Arrow buffer released after this batch
		v := int32(len(*ids))
		m[s] = v
		*ids = append(*ids, s)
		return v
	}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return nil, err
		}
		u, ok1 := rec.Column(0).(*array.String)
		it, ok2 := rec.Column(1).(*array.String)
		ty, ok3 := rec.Column(2).(*array.String)
		ts, ok4 := rec.Column(3).(*array.Timestamp)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, fmt.Errorf("%s: the interaction columns have types %s, %s, %s, %s; want string, string, string, timestamp",
				t.URI(), rec.Column(0).DataType(), rec.Column(1).DataType(), rec.Column(2).DataType(), rec.Column(3).DataType())
		}
		var val *array.Float64
		if withValue {
			if val, ok1 = rec.Column(4).(*array.Float64); !ok1 {
				return nil, fmt.Errorf("%s: column value has type %s; --weight-by-value needs double", t.URI(), rec.Column(4).DataType())
			}
		}
		unit := ts.DataType().(*arrow.TimestampType).Unit
		for i := range int(rec.NumRows()) {
			if u.IsNull(i) || it.IsNull(i) || ty.IsNull(i) || ts.IsNull(i) {
				in.Skipped++
				continue
			}
			in.User = append(in.User, intern(users, &in.UserIDs, u.Value(i)))
			in.Item = append(in.Item, intern(items, &in.ItemIDs, it.Value(i)))
			tn := ty.Value(i)
			tv, ok := types[tn]
			if !ok {
				tv = uint16(len(in.TypeNames))
				types[strings.Clone(tn)] = tv
				in.TypeNames = append(in.TypeNames, strings.Clone(tn))
			}
			in.Type = append(in.Type, tv)
			in.Time = append(in.Time, units.Micros(int64(ts.Value(i)), unit))
			if withValue {
				v := math.NaN()
				if !val.IsNull(i) {
					v = val.Value(i)
				}
				in.Value = append(in.Value, v)
			}
		}
	}
	return in, nil
}

// FromDataset is a generated data set's interactions, indexed by the generator's own indices
// (every generated user and item has an index, with or without events).
func FromDataset(d *Dataset) *Interactions {
	in := &Interactions{TypeNames: GenTypeNames[:]}
	in.UserIDs = make([]string, d.Options.Users)
	for i := range in.UserIDs {
		in.UserIDs[i] = UserID(int32(i))
	}
	in.ItemIDs = make([]string, d.Options.Items)
	for i := range in.ItemIDs {
		in.ItemIDs[i] = ItemID(int32(i))
	}
	n := len(d.Events)
	in.User, in.Item, in.Type, in.Time, in.Value = make([]int32, n), make([]int32, n), make([]uint16, n), make([]int64, n), make([]float64, n)
	for i, e := range d.Events {
		in.User[i], in.Item[i], in.Type[i], in.Time[i], in.Value[i] = e.User, e.Item, uint16(e.Type), e.Time, e.Value
	}
	return in
}

// DefaultWeights are the per-type weights of `--weights`: a purchase says more than a view.
func DefaultWeights() map[string]float32 {
	return map[string]float32{"view": 1, "add_to_cart": 3, "purchase": 5}
}

// Pairs are the interactions aggregated per (user, item): the summed weight and the latest time,
// by user rows (items ascending within a row).
type Pairs struct {
	NUsers, NItems int
	Indptr         []int64
	Item           []int32
	Weight         []float32
	Last           []int64
}

// Aggregate sums the weights of each (user, item) pair. The weight of an interaction is
// weights[type] (1 for a type not in the map), or its value when byValue (1 when null; negative
// values count 0), times 0.5^(age/halfLife) when halfLife > 0, the age measured from the
// latest interaction in the data (not the wall clock, so a rerun gives the same result).
func (in *Interactions) Aggregate(weights map[string]float32, halfLife time.Duration, byValue bool) *Pairs {
	nu := len(in.UserIDs)
	tw := make([]float32, len(in.TypeNames))
	for i, name := range in.TypeNames {
		tw[i] = 1
		if w, ok := weights[name]; ok {
			tw[i] = w
		}
	}
	var tmax int64 = math.MinInt64
	for _, t := range in.Time {
		tmax = max(tmax, t)
	}
	// Counting sort of the events by user.
	ptr := make([]int64, nu+1)
	for _, u := range in.User {
		ptr[u+1]++
	}
	for i := 1; i <= nu; i++ {
		ptr[i] += ptr[i-1]
	}
	order := make([]int32, len(in.User))
	next := slices.Clone(ptr[:nu])
	for i, u := range in.User {
		order[next[u]] = int32(i)
		next[u]++
	}
	p := &Pairs{NUsers: nu, NItems: len(in.ItemIDs), Indptr: make([]int64, nu+1)}
	p.Item = make([]int32, 0, len(in.User)/2)
	p.Weight = make([]float32, 0, len(in.User)/2)
	p.Last = make([]int64, 0, len(in.User)/2)
	hl := float64(halfLife.Microseconds())
	for u := range nu {
		ev := order[ptr[u]:ptr[u+1]]
		slices.SortFunc(ev, func(a, b int32) int {
			if in.Item[a] != in.Item[b] {
				return int(in.Item[a] - in.Item[b])
			}
			return int(a - b)
		})
		for j, e := range ev {
			w := tw[in.Type[e]]
			if byValue {
				w = 1
				if v := in.Value[e]; !math.IsNaN(v) {
					w = float32(max(v, 0))
				}
			}
			if hl > 0 {
				w *= float32(math.Exp2(-float64(tmax-in.Time[e]) / hl))
			}
			if j > 0 && in.Item[ev[j-1]] == in.Item[e] {
				last := len(p.Item) - 1
				p.Weight[last] += w
				p.Last[last] = max(p.Last[last], in.Time[e])
				continue
			}
			p.Item = append(p.Item, in.Item[e])
			p.Weight = append(p.Weight, w)
			p.Last = append(p.Last, in.Time[e])
		}
		p.Indptr[u+1] = int64(len(p.Item))
	}
	return p
}

// Ratings is the pairs as a ratings matrix, leaving out the pairs where drop is true (nil: none)
// and pairs of weight 0.
func (p *Pairs) Ratings(drop []bool) *Ratings {
	byUser := CSR{Indptr: make([]int64, p.NUsers+1)}
	byUser.Indices = make([]int32, 0, len(p.Item))
	byUser.Values = make([]float32, 0, len(p.Item))
	for u := range p.NUsers {
		for j := p.Indptr[u]; j < p.Indptr[u+1]; j++ {
			if (drop != nil && drop[j]) || p.Weight[j] <= 0 {
				continue
			}
			byUser.Indices = append(byUser.Indices, p.Item[j])
			byUser.Values = append(byUser.Values, p.Weight[j])
		}
		byUser.Indptr[u+1] = int64(len(byUser.Indices))
	}
	return &Ratings{NUsers: p.NUsers, NItems: p.NItems, ByUser: byUser, ByItem: transpose(&byUser, p.NItems)}
}

// Ratings aggregates and builds the matrix in one step (see Aggregate).
func (in *Interactions) Ratings(weights map[string]float32, halfLife time.Duration, byValue bool, drop []bool) (*Ratings, *Pairs) {
	p := in.Aggregate(weights, halfLife, byValue)
	return p.Ratings(drop), p
}
