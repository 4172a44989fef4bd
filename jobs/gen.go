package jobs

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// GenOptions size a generated data set. A nil *GenOptions is the defaults.
type GenOptions struct {
	Users        int    // default 10,000
	Items        int    // default 5,000
	Days         int    // default 30
	Interactions int    // total events, surges and decoys included; default 1,000,000
	Seed         uint64 // default 1
	// EventSeed, when set, draws the events (and surges) from a random stream of their own while
	// the world (items, categories, users and their tastes) stays Seed's: the same shop in
	// another period, e.g. the next week after Start moves on.
	EventSeed uint64
	Start     time.Time // the first day, UTC midnight; default 2024-03-01
	// Categories is the number of true item categories (default Items/100, between 4 and 50).
	Categories int
	// Factors is the dimension of the true latent space (default 16).
	Factors int
}

func (o *GenOptions) resolve() (GenOptions, error) {
	var r GenOptions
	if o != nil {
		r = *o
	}
	if r.Users == 0 {
		r.Users = 10000
	}
	if r.Items == 0 {
		r.Items = 5000
	}
	if r.Days == 0 {
		r.Days = 30
	}
	if r.Interactions == 0 {
		r.Interactions = 1000000
	}
	if r.Seed == 0 {
		r.Seed = 1
	}
	if r.Start.IsZero() {
		r.Start = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	}
	if r.Categories == 0 {
		r.Categories = min(50, max(4, r.Items/100))
	}
	if r.Factors == 0 {
		r.Factors = 16
	}
	switch {
	case r.Users < 1 || r.Items < 2 || r.Days < 1 || r.Interactions < 1:
		return r, badParam("users, items, days and interactions must be positive (items at least 2)")
	case r.Categories > r.Items:
		return r, badParam("categories (%d) above items (%d)", r.Categories, r.Items)
	case r.Factors < 2:
		return r, badParam("factors must be at least 2")
	}
	return r, nil
}

// Interaction types of generated events, in funnel order.
const (
	GenView uint8 = iota
	GenAddToCart
	GenPurchase
)

// GenTypeNames are the standard names of the generated interaction types.
var GenTypeNames = [...]string{"view", "add_to_cart", "purchase"}

// Sources a generated event is assigned to (about 50%, 30% and 20%).
const (
	SourceRetail uint8 = iota
	SourceApp
	SourceClicks
)

// GenSourceNames are the source names of the generated files, as in their mappings.
var GenSourceNames = [...]string{"retail", "app", "clicks"}

// Event is one generated interaction. Times are whole seconds (in microseconds), so that every
// file format carries them exactly.
type Event struct {
	Time   int64 // unix microseconds, UTC
	Value  float64
	User   int32
	Item   int32
	Type   uint8
	Source uint8
}

// Surge is an injected burst on one item: its event rate multiplied by Multiplier over
// [Start, End) ("step": at once; "ramp": rising linearly to the multiplier; "spike": a short step).
type Surge struct {
	ItemID     string    `json:"item_id"`
	Kind       string    `json:"kind"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Multiplier float64   `json:"multiplier"`
	// BaselinePerHour is the item's expected events per hour without the surge.
	BaselinePerHour float64 `json:"baseline_per_hour"`
	ExtraEvents     int     `json:"extra_events"`
}

// Decoy is a pattern that is not an item surge: a site-wide spike (every item's rate up
// together) or the daily peak hours.
type Decoy struct {
	Kind  string    `json:"kind"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// TruthItem is an item's true category and latent factors.
type TruthItem struct {
	ItemID   string    `json:"item_id"`
	Category string    `json:"category"`
	Factors  []float32 `json:"factors"`
}

// Dataset is a generated data set: the events, sorted by time, and the ground truth.
type Dataset struct {
	Options      GenOptions
	Events       []Event
	ItemCategory []int32   // true category per item index
	ItemFactors  []float32 // true factors, Options.Factors per item
	Surges       []Surge
	Decoys       []Decoy
}

// UserID, ItemID and CategoryID are the string ids of generated indices.
func UserID(i int32) string     { return "u" + itoa(int64(i)) }
func ItemID(i int32) string     { return "i" + itoa(int64(i)) }
func CategoryID(c int32) string { return "c" + itoa(int64(c)) }

func itoa(i int64) string { return fmt.Sprint(i) }

// Truth is the items' ground truth.
func (d *Dataset) Truth() []TruthItem {
	k := d.Options.Factors
	out := make([]TruthItem, len(d.ItemCategory))
	for i := range out {
		out[i] = TruthItem{ItemID: ItemID(int32(i)), Category: CategoryID(d.ItemCategory[i]), Factors: d.ItemFactors[i*k : (i+1)*k]}
	}
	return out
}

// cumulative is a sampler over weights by binary search on their running sum.
type cumulative []float64

func newCumulative(w []float64) cumulative {
	c := make(cumulative, len(w))
	s := 0.0
	for i, x := range w {
		s += x
		c[i] = s
	}
	return c
}

func (c cumulative) sample(r *rand.Rand) int {
	x := r.Float64() * c[len(c)-1]
	return min(sort.SearchFloat64s(c, x), len(c)-1)
}

// Generate builds a data set. It is a pure function of the options: the same options give the
// same events.
//
// The model: items have a power-law popularity (Zipf, exponent 0.8 over a random permutation)
// and a true category; their true factors are the category's centroid plus noise. Users have a
// power-law activity and one to three favourite categories; their factors are the weighted
// centroids. A session starts on a day (weekends 1.3x) and an hour (a daily cycle peaking at
// 20:00 UTC), picks a category (a favourite with probability 0.8, else any by popularity) and an
// item in it by popularity weighted by the user-item affinity of the true factors, and runs the
// funnel: a view, sometimes a second view, add_to_cart with probability 0.25, purchase after a
// cart with probability 0.4. Surges (step x1.5-5 for a day, ramp x2-5 over 12 hours, spike x3-5
// for 2 hours) on items with a baseline of at least MinSurgeBaseline events an hour (or the most
// popular ones on small sets) and decoys come on top, within the Interactions budget.
// MinSurgeBaseline is the least expected volume, in events an hour, of an item that gets a surge:
// below it a surge of a few extra events cannot be told from noise by any detector.
const MinSurgeBaseline = 20.0

func Generate(opts *GenOptions) (*Dataset, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	d := &Dataset{Options: o}
	k, nc := o.Factors, o.Categories

	// Categories and items.
	centroids := make([]float32, nc*k)
	for i := range centroids {
		centroids[i] = float32(r.NormFloat64())
	}
	d.ItemCategory = make([]int32, o.Items)
	d.ItemFactors = make([]float32, o.Items*k)
	perm := r.Perm(o.Items)
	pop := make([]float64, o.Items)
	for i := range o.Items {
		c := int32(i % nc)
		if i >= nc {
			c = int32(r.IntN(nc))
		}
		d.ItemCategory[i] = c
		for f := range k {
			d.ItemFactors[i*k+f] = centroids[int(c)*k+f] + 0.6*float32(r.NormFloat64())
		}
		pop[i] = 1 / math.Pow(float64(perm[i]+1), 0.8)
	}
	catItems := make([][]int32, nc)
	for i, c := range d.ItemCategory {
		catItems[c] = append(catItems[c], int32(i))
	}
	catPop := make([]float64, nc)
	for i, c := range d.ItemCategory {
		catPop[c] += pop[i]
	}
	catSampler := newCumulative(catPop)

	// Users.
	type user struct {
		favs    [3]int32
		favW    [3]float64
		nfav    int
		factors []float32
	}
	users := make([]user, o.Users)
	activity := make([]float64, o.Users)
	for u := range users {
		us := &users[u]
		us.nfav = 1 + r.IntN(3)
		us.factors = make([]float32, k)
		tot := 0.0
		for j := range us.nfav {
			us.favs[j] = int32(r.IntN(nc))
			us.favW[j] = 1 / float64(j+1)
			tot += us.favW[j]
		}
		for j := range us.nfav {
			us.favW[j] /= tot
			for f := range k {
				us.factors[f] += float32(us.favW[j]) * centroids[int(us.favs[j])*k+f]
			}
		}
		for f := range k {
			us.factors[f] += 0.3 * float32(r.NormFloat64())
		}
		activity[u] = math.Exp(r.NormFloat64() * 0.9) // log-normal: a long tail of heavy users
	}
	userSampler := newCumulative(activity)
	if o.EventSeed != 0 {
		r = rand.New(rand.NewPCG(o.EventSeed, 0x632be59bd9b4e019))
	}

	// Time: days (weekends heavier) and hours (peak at 20:00).
	dayW := make([]float64, o.Days)
	for i := range dayW {
		wd := o.Start.AddDate(0, 0, i).Weekday()
		dayW[i] = 1
		if wd == time.Saturday || wd == time.Sunday {
			dayW[i] = 1.3
		}
	}
	daySampler := newCumulative(dayW)
	hourW := make([]float64, 24)
	for h := range hourW {
		hourW[h] = 1 + 0.8*math.Cos(2*math.Pi*float64(h-20)/24)
	}
	hourSampler := newCumulative(hourW)
	startUS := o.Start.UnixMicro()
	const sec = int64(time.Second / time.Microsecond)
	const hour = 3600 * sec
	span := int64(o.Days) * 24 * hour

	// Surges and decoys: planned first so the base events fill the rest of the budget.
	hours := float64(o.Days * 24)
	totPop := 0.0
	for _, p := range pop {
		totPop += p
	}
	byPop := make([]int32, o.Items)
	for i := range byPop {
		byPop[i] = int32(i)
	}
	slices.SortFunc(byPop, func(a, b int32) int { return cmp.Compare(pop[b], pop[a]) })
	baseline := func(i int32) float64 { return float64(o.Interactions) * pop[i] / totPop / hours }
	var cands []int32
	for _, i := range byPop[min(3, len(byPop)-1):] { // not the very top: surges should stand out
		if baseline(i) >= MinSurgeBaseline {
			cands = append(cands, i)
		}
	}
	if len(cands) < 3 {
		cands = byPop[min(3, len(byPop)-1):min(len(byPop), 30)]
	}
	nSurges := min(len(cands), max(3, min(12, o.Items/500)))
	r.Shuffle(len(cands), func(a, b int) { cands[a], cands[b] = cands[b], cands[a] })
	var extra []Event
	kinds := []string{"step", "ramp", "spike"}
	durs := []int64{24 * hour, 12 * hour, 2 * hour}
	earliest, latest := int64(o.Days/4)*24, int64(max(o.Days*24-26, o.Days/4*24+1))
	for s := range nSurges {
		item := cands[s]
		kind := s % 3
		// x1.5 to x5 overall; a short burst needs a larger factor to be a surge rather than noise
		// (a 2-hour spike of x1.5 on 20 events an hour is 20 extra events: two sigma a window).
		mult := []float64{1.5, 2, 3}[kind] + []float64{3.5, 3, 2}[kind]*r.Float64()
		startH := earliest + r.Int64N(max(1, latest-earliest))
		st := startUS + startH*hour
		dur := min(durs[kind], startUS+span-st)
		b := baseline(item)
		avg := mult - 1
		if kind == 1 {
			avg /= 2
		}
		n := int(math.Round(avg * b * float64(dur) / float64(hour)))
		for range n {
			u := r.Float64()
			if kind == 1 {
				u = math.Sqrt(u) // density rising linearly over the ramp
			}
			extra = append(extra, Event{Time: st + int64(u*float64(dur))/sec*sec, User: int32(userSampler.sample(r)), Item: item, Type: GenView})
		}
		d.Surges = append(d.Surges, Surge{ItemID: ItemID(item), Kind: kinds[kind], Start: time.UnixMicro(st).UTC(), End: time.UnixMicro(st + dur).UTC(),
			Multiplier: math.Round(mult*100) / 100, BaselinePerHour: math.Round(b*1000) / 1000, ExtraEvents: n})
	}
	// A site-wide spike: one hour at 3x for every item, on a day without surges nearby if possible.
	popSampler := newCumulative(pop)
	spikeH := int64(o.Days/2)*24 + 11
	if spikeH >= int64(o.Days*24) {
		spikeH = int64(o.Days*24) - 1
	}
	nSpike := int(2 * float64(o.Interactions) / hours)
	for range nSpike {
		extra = append(extra, Event{Time: startUS + spikeH*hour + r.Int64N(hour)/sec*sec, User: int32(userSampler.sample(r)), Item: int32(popSampler.sample(r)), Type: GenView})
	}
	d.Decoys = append(d.Decoys, Decoy{Kind: "sitewide_spike", Start: time.UnixMicro(startUS + spikeH*hour).UTC(), End: time.UnixMicro(startUS + (spikeH+1)*hour).UTC()})
	for day := range o.Days {
		st := startUS + int64(day)*24*hour + 19*hour
		d.Decoys = append(d.Decoys, Decoy{Kind: "daily_peak", Start: time.UnixMicro(st).UTC(), End: time.UnixMicro(st + 3*hour).UTC()})
	}
	if len(extra) > o.Interactions/5 { // tiny data sets: keep the base events the majority
		extra = extra[:o.Interactions/5]
	}

	// Base sessions.
	nBase := o.Interactions - len(extra)
	events := make([]Event, 0, o.Interactions)
	affinity := func(u *user, i int32) float64 {
		s := float32(0)
		for f := range k {
			s += u.factors[f] * d.ItemFactors[int(i)*k+f]
		}
		return math.Exp(0.15 * float64(s))
	}
	catCum := make([]cumulative, nc)
	for c, items := range catItems {
		w := make([]float64, len(items))
		for j, i := range items {
			w[j] = pop[i]
		}
		catCum[c] = newCumulative(w)
	}
	for len(events) < nBase {
		ui := userSampler.sample(r)
		us := &users[ui]
		var c int
		if r.Float64() < 0.8 {
			x := r.Float64()
			c = int(us.favs[us.nfav-1])
			for j := range us.nfav {
				if x < us.favW[j] {
					c = int(us.favs[j])
					break
				}
				x -= us.favW[j]
			}
		} else {
			c = catSampler.sample(r)
		}
		if len(catItems[c]) == 0 {
			continue
		}
		// Popularity within the category, then the user's affinity: the best of three draws by
		// affinity-weighted acceptance.
		item := catItems[c][catCum[c].sample(r)]
		best := affinity(us, item)
		for range 2 {
			j := catItems[c][catCum[c].sample(r)]
			if a := affinity(us, j); a > best && r.Float64() < 0.7 {
				item, best = j, a
			}
		}
		t := startUS + int64(daySampler.sample(r))*24*hour + int64(hourSampler.sample(r))*hour + r.Int64N(3600)*sec
		add := func(typ uint8, at int64) {
			if len(events) < nBase && at < startUS+span {
				events = append(events, Event{Time: at, User: int32(ui), Item: item, Type: typ})
			}
		}
		add(GenView, t)
		if r.Float64() < 0.2 {
			t += (5 + r.Int64N(300)) * sec
			add(GenView, t)
		}
		if r.Float64() < 0.25 {
			t += (30 + r.Int64N(600)) * sec
			add(GenAddToCart, t)
			if r.Float64() < 0.4 {
				t += (60 + r.Int64N(1800)) * sec
				add(GenPurchase, t)
			}
		}
	}
	events = append(events, extra...)
	slices.SortStableFunc(events, func(a, b Event) int { return cmp.Compare(a.Time, b.Time) })
	prices := make([]float64, o.Items)
	for i := range prices {
		prices[i] = math.Round(math.Exp(2.5+r.NormFloat64())*100) / 100
	}
	for i := range events {
		e := &events[i]
		h := splitmix(o.Seed ^ uint64(i)*0x9e3779b97f4a7c15)
		switch x := h % 10; {
		case x < 5:
			e.Source = SourceRetail
		case x < 8:
			e.Source = SourceApp
		default:
			e.Source = SourceClicks
		}
		e.Value = math.NaN()
		if e.Type == GenPurchase && e.Source == SourceClicks {
			e.Value = prices[e.Item]
		}
	}
	d.Events = events
	return d, nil
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
