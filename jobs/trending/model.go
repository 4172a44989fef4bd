package trending

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lakehouse/lake/internal/units"

	"golang.org/x/sync/errgroup"
)

// DefaultOrigin is the default window origin: 1970-01-05T00:00:00Z, a Monday, so that windows
// of a day start at midnight UTC and windows of a week on Mondays.
var DefaultOrigin = time.Date(1970, 1, 5, 0, 0, 0, 0, time.UTC)

// Defaults of the flags. They were chosen on generated data (see DESIGN-NOTES.md).
const (
	DefaultWindow    = time.Hour
	DefaultLateness  = 10 * time.Minute // for windows shorter than a day; see DefaultLatenessFor
	DefaultThreshold = 8.0              // for windows of an hour or less; see DefaultThresholdFor
	DefaultMinCount  = 3
	DefaultTop       = 20
)

// DefaultThresholdFor is the default threshold (-log10 of a tail probability per window, or the
// CUSUM statistic in log10 units) for windows of length w: DefaultThreshold (8) up to an hour,
// where thousands of items are each tested thousands of times a year; falling linearly in
// log(w) to 4 at a day and beyond, where series have 24 times fewer windows per item and usually
// far fewer items (tens of regions, not thousands of products). On daily surveillance-like
// series, 4 found 95% of outbreaks with 0.1 false alarms per item-year; 8 found 71-76%.
func DefaultThresholdFor(w time.Duration) float64 {
	switch {
	case w <= time.Hour:
		return DefaultThreshold
	case w >= 24*time.Hour:
		return 4
	}
	return DefaultThreshold - 4*math.Log(float64(w)/float64(time.Hour))/math.Log(24)
}

// Count modes: what an item's count in a window is (Params.Count).
const (
	// CountUsers counts the distinct users who interacted with the item, each with the weight of
	// their strongest interaction type (the default): a surge is many users, not one user's
	// session or a bot refreshing a page.
	CountUsers = "users"
	// CountEvents counts every row with its type's weight.
	CountEvents = "events"
	// CountValue counts every row's value column times its type's weight: pre-aggregated
	// series (one row per day and region with a number of cases). A null, NaN or negative
	// value counts 0 (the lineage's metrics say how many); a value above MaxValue counts
	// MaxValue.
	CountValue = "value"
)

// MaxValue caps one row's value in CountValue mode, so that a window's fixed-point sum cannot
// overflow.
const MaxValue = 1e9

// DefaultLatenessFor is the allowed lateness used when none is given: DefaultLateness for
// windows shorter than a day, and 0 for windows of a day or more. Daily series are stamped at
// the start of their day, so with a lateness of 0 a day closes as soon as the first row of the
// next day is read; any positive lateness below a day would hold every day back until the
// rows of the day after next arrive, one more day of delay for nothing. A stream of raw events
// counted in daily windows then drops the events of a day read after the next day's first
// one (counted as late); give --allowed-lateness to wait for them.
func DefaultLatenessFor(window time.Duration) time.Duration {
	if window >= 24*time.Hour {
		return 0
	}
	return DefaultLateness
}

// Constants of the model. Half-lives are in time, turned into windows by the window length.
const (
	levelHalfLife  = 2 * 24 * time.Hour // an item's share of the site-wide volume
	seasonHalfLife = 7                  // updates of one phase (days for the daily season, weeks for the weekly)
	kappaItem      = 20.0               // prior strength (expected events) pulling an item's daily season to its category's
	kappaCat       = 50.0               // prior strength pulling a category's season to the site-wide curve (1)
	priorEvents    = 1.0                // pseudo-events at the category's mean item share, for items with little history
	cusumShift     = 2.0                // CUSUM detects a doubling of the forecast
	lnShift        = 0.6931471805599453 // ln(cusumShift)
	maxItemPhases  = 24                 // phases of an item's daily season (finer windows share buckets)
	maxWeekPhases  = 168                // phases of a category's weekly season
	fixedPoint     = 1 << 16            // weights and counts are summed in fixed point, so sums do not depend on order

	// Windows longer than half a day (no daily season): the level's half-life is at least
	// minLevelWindows windows (two days would be two daily windows: a forecast from the last
	// three values, as noisy as they are), and the item's own season is the weekly one.
	minLevelWindows = 14
	// Per-item overdispersion (trending-v2, see modelVersion): the item's variance is phi times
	// the site-wide one, phi the EWMA of its squared standardised residuals over
	// phiHalfLife windows, shrunk to 1 by phiPrior pseudo-windows and kept within
	// [phiMin, phiMax]; a residual counts at most phiClip (a surge does not teach it).
	phiHalfLife = 60
	phiPrior    = 10.0
	phiMin      = 0.5
	phiMax      = 50.0
	phiClip     = 25.0
)

// Params are the parameters of the model: the flags of `lake trending` that change its output.
type Params struct {
	Window    time.Duration      // window length; at least a second
	Origin    time.Time          // windows start at Origin + k*Window
	Lateness  time.Duration      // a window closes once the newest event time passes its end plus Lateness
	Weights   map[string]float64 // per interaction type; nil: every type counts 1; a type not in the map counts 1
	Types     []string           // only these interaction types; nil: all
	Threshold float64            // flag when score >= Threshold
	MinCount  float64            // and the window's (weighted) count is at least MinCount
	Top       int                // popular items per window
	Count     string             // CountUsers (default, ""), CountEvents or CountValue
}

func (p *Params) resolve() (Params, error) {
	var r Params
	if p != nil {
		r = *p
	}
	if r.Window == 0 {
		r.Window = DefaultWindow
	}
	if r.Origin.IsZero() {
		r.Origin = DefaultOrigin
	}
	if r.Threshold == 0 {
		r.Threshold = DefaultThresholdFor(r.Window)
	}
	if r.MinCount == 0 {
		r.MinCount = DefaultMinCount
	}
	if r.Top == 0 {
		r.Top = DefaultTop
	}
	if r.Count == "" {
		r.Count = CountUsers
	}
	switch {
	case r.Window < time.Second:
		return r, badParam("window %s is shorter than a second; want e.g. 1h, 15m or 1d", r.Window)
	case r.Window%time.Microsecond != 0:
		return r, badParam("window %s is not a whole number of microseconds", r.Window)
	case r.Lateness < 0:
		return r, badParam("allowed lateness %s is negative", r.Lateness)
	case !(r.Threshold > 0) || math.IsInf(r.Threshold, 0):
		return r, badParam("threshold %v: want a positive number (a -log10 tail probability, e.g. 6)", r.Threshold)
	case !(r.MinCount > 0) || math.IsInf(r.MinCount, 0):
		return r, badParam("min count %v: want a positive number", r.MinCount)
	case r.Top < 1 || r.Top > 100000:
		return r, badParam("top %d: want 1 to 100000", r.Top)
	case r.Count != CountUsers && r.Count != CountEvents && r.Count != CountValue:
		return r, badParam("count %q: want users (distinct users), events (rows) or value (the value column)", r.Count)
	}
	for k, w := range r.Weights {
		if !(w >= 0) || w > 1000 {
			return r, badParam("weight %s=%v: want a number from 0 to 1000", k, w)
		}
	}
	return r, nil
}

// Row is one output row: an item in a closed window.
type Row struct {
	Item     string
	Count    float64 // weighted count of the window
	Expected float64 // the forecast (trending only)
	Score    float64 // -log10 tail probability or CUSUM statistic, whichever is larger (trending only)
	Rank     int     // from 1
}

// Window is the result of one closed window.
type Window struct {
	Index    int64 // k: the window starts at origin + k*window
	Start    time.Time
	Total    float64 // site-wide weighted count
	Spike    float64 // Total over its forecast from the site-wide level and seasons (1: none)
	Trending []Row   // flagged items, best first
	Popular  []Row   // the top items by count
}

// itemState is the per-item model state, as parallel slices indexed by item (struct of arrays:
// no pointer per item for the GC to follow).
type itemState struct {
	num, den []float64 // EWMA of the item's count and of its deseasonalised base: level = num/den
	// seas is the daily season, phase-major so that a window's pass over the items reads one
	// row in order: seas[h][2i] is the EWMA of item i's counts at phase h, seas[h][2i+1] that
	// of its level-only forecast.
	seas  [][]float32
	cusum []float32
	// phiA, phiB: EWMA of the item's squared standardised residuals and of 1 (its
	// overdispersion relative to the site-wide variance); nil in trending-v1.
	phiA, phiB []float32
	first      []int64 // first window with an event
	cat        []int32 // category index, -1 for none
}

type catState struct {
	num, den   []float64
	dayA, dayB []float64 // dayPhases per category
	wkA, wkB   []float64 // weekPhases per category
	items      []int32   // items in the category
}

// windowAcc is an open window's (user, item) events: the key is a 64-bit hash of the user and
// the item index, the value the item index (high 32 bits) and the fixed-point weight (low 32
// bits). Appending is cheaper than a map insert; close sorts by key and keeps the largest
// weight of each pair. With CountEvents and CountValue nothing is deduplicated: the key is the
// item index and the value the row's fixed-point amount (weight times value), summed by close.
type windowAcc struct {
	pairs []pair
	cats  map[int32]int32 // item -> category, for items without one yet
}

type pair struct{ key, val uint64 }

// Detector holds the model: per-item state, the open windows, and the watermark. It is fed
// events in any order (Add), and closes windows as the newest event time passes their end plus
// the allowed lateness (Advance). The same events give the same windows whatever the order
// in which they arrive, as long as none arrives after its window closed (those are counted in
// Late and dropped). A Detector is not safe for concurrent use.
type Detector struct {
	p                Params
	winUS, originUS  int64
	latenessUS       int64
	dayPeriod        int64 // windows per day (0: windows do not tile a day)
	weekPeriod       int64 // windows per week (0: no weekly season)
	itemPhases       int
	dayPhases        int
	weekPhases       int
	lambdaL          float64
	lambdaS, lambdaW float64
	warmup           int64

	itemIDs []string
	itemIdx map[string]int32
	items   itemState
	catIDs  []string
	catIdx  map[string]int32
	cats    catState

	weights map[string]int64 // fixed point
	types   map[string]bool

	dedup      bool    // CountUsers: one count per (user, item) and window
	useValue   bool    // CountValue
	itemWeekly bool    // the item's own season is the weekly one (windows longer than half a day)
	itemPhi    bool    // trending-v2: per-item overdispersion, and the level's guard while the CUSUM rises
	lambdaPhi  float64 // its EWMA factor
	valueNull  int64   // CountValue: rows whose value was null or NaN (counted 0)
	valueNeg   int64   // CountValue: rows whose value was negative (counted 0)

	open      map[int64]*windowAcc
	watermark int64 // newest event time seen (µs)
	next      int64 // the first window not yet closed
	started   bool
	seen      int64 // windows closed with events
	lastK     int64 // the window of the last Add, and its accumulator (events come mostly in order)
	lastAcc   *windowAcc
	active    int // items with a closed window with events
	late      int64
	events    int64

	disp, delta2  float64 // site-wide dispersion index and squared relative forecast error
	dispN, deltaN int64   // windows that updated them

	// The site-wide volume's own forecast (level and seasons), to recognise a site-wide spike.
	siteNum, siteDen     float64
	siteDayA, siteDayB   []float64
	siteWeekA, siteWeekB []float64
	lastSpike            float64 // the last closed window's volume over its forecast
	siteForecast         float64 // and that forecast (0 before warm-up)

	// scratch, reused between windows
	cur     []int64
	slots   []int32 // dedupe's table
	catCnt  []int64
	flagged []bool
}

// NewDetector returns an empty detector for the parameters.
func NewDetector(p *Params) (*Detector, error) {
	r, err := p.resolve()
	if err != nil {
		return nil, err
	}
	d := &Detector{p: r, winUS: r.Window.Microseconds(), originUS: r.Origin.UnixMicro(), latenessUS: r.Lateness.Microseconds(),
		itemIdx: map[string]int32{}, catIdx: map[string]int32{}, open: map[int64]*windowAcc{},
		disp: 1.5, delta2: 0.01}
	const dayUS, weekUS = 86400e6, 7 * 86400e6
	if d.winUS <= dayUS/2 && dayUS%d.winUS == 0 {
		d.dayPeriod = dayUS / d.winUS
		d.itemPhases = int(min(d.dayPeriod, maxItemPhases))
		d.dayPhases = int(min(d.dayPeriod, maxWeekPhases))
	}
	if d.winUS <= dayUS && weekUS%d.winUS == 0 {
		d.weekPeriod = weekUS / d.winUS
		d.weekPhases = int(min(d.weekPeriod, maxWeekPhases))
	}
	if longWindows(r.Window) && d.weekPeriod > 1 {
		// Windows of more than half a day: no daily season, so the item's own season is the
		// weekly one (a day of the week for daily windows: reporting that dips at weekends).
		d.itemWeekly = true
		d.itemPhases = int(min(d.weekPeriod, maxItemPhases))
	}
	d.dedup, d.useValue = r.Count == CountUsers, r.Count == CountValue
	d.itemPhi = modelVersion(r) == modelV2
	d.lambdaPhi = math.Exp2(-1.0 / phiHalfLife)
	d.items.seas = make([][]float32, d.itemPhases)
	d.siteDayA, d.siteDayB = make([]float64, d.dayPhases), make([]float64, d.dayPhases)
	d.siteWeekA, d.siteWeekB = make([]float64, d.weekPhases), make([]float64, d.weekPhases)
	windowsPer := func(t time.Duration) float64 { return max(1, float64(t)/float64(r.Window)) }
	levelWindows := windowsPer(levelHalfLife)
	if longWindows(r.Window) {
		levelWindows = max(levelWindows, minLevelWindows)
	}
	d.lambdaL = math.Exp2(-1 / levelWindows)
	d.lambdaS = math.Exp2(-1.0 / seasonHalfLife)
	d.lambdaW = math.Exp2(-1.0 / 3) // weekly: three weeks
	d.warmup = max(3, d.dayPeriod)
	if d.itemWeekly {
		d.warmup = max(d.warmup, 2*d.weekPeriod) // every day of the week seen twice
	}
	if r.Weights != nil {
		d.weights = map[string]int64{}
		for k, w := range r.Weights {
			d.weights[k] = int64(math.Round(w * fixedPoint))
		}
	}
	if r.Types != nil {
		d.types = map[string]bool{}
		for _, t := range r.Types {
			d.types[t] = true
		}
	}
	return d, nil
}

// Params are the detector's resolved parameters.
func (d *Detector) Params() Params { return d.p }

// Late is the number of events dropped because their window had already closed.
func (d *Detector) Late() int64 { return d.late }

// Events is the number of events counted.
func (d *Detector) Events() int64 { return d.events }

// Items is the number of tracked items.
func (d *Detector) Items() int { return len(d.itemIDs) }

// NextWindow is the first window not yet closed; ok is false before the first event.
func (d *Detector) NextWindow() (k int64, ok bool) { return d.next, d.started }

// WindowIndex is the window holding unix microsecond t.
func (d *Detector) WindowIndex(t int64) int64 { return units.FloorDiv(t-d.originUS, d.winUS) }

// WindowStart is the start of window k.
func (d *Detector) WindowStart(k int64) time.Time {
	return time.UnixMicro(d.originUS + k*d.winUS).UTC()
}

// longWindows says whether windows are longer than half a day: no daily season, and the
// model's adjustments for daily (or longer) windows apply.
func longWindows(w time.Duration) bool { return w > 12*time.Hour }

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// weight is the fixed-point weight of an interaction type; 0 and false when it is filtered out.
func (d *Detector) weight(typ string) (int64, bool) {
	if d.types != nil && !d.types[typ] {
		return 0, false
	}
	if d.weights != nil {
		if w, ok := d.weights[typ]; ok {
			return w, true
		}
	}
	return fixedPoint, true
}

// ValueNull is the number of rows counted 0 in CountValue mode because their value was null
// (or NaN); ValueNegative those counted 0 because it was negative.
func (d *Detector) ValueNull() int64     { return d.valueNull }
func (d *Detector) ValueNegative() int64 { return d.valueNeg }

// Add counts one event: user, item, interaction type, time (unix µs) and category ("" when the
// source has none). With CountUsers a user counts once per item and window, with the weight of
// their strongest interaction type: a surge is many users, not one user's session or a bot
// refreshing a page; with CountEvents every event counts its type's weight; with CountValue
// the event has no value, and counts 0 (see AddValue). The item's category is the first one
// seen for it.
func (d *Detector) Add(user, item, typ string, t int64, category string) {
	d.AddValue(user, item, typ, t, math.NaN(), category)
}

// AddValue is Add with the row's value column (NaN: null), which CountValue counts (times the
// type's weight; null, NaN or negative: 0; at most MaxValue). Other modes ignore it.
func (d *Detector) AddValue(user, item, typ string, t int64, value float64, category string) {
	w, ok := d.weight(typ)
	if !ok {
		return
	}
	k := d.WindowIndex(t)
	if d.started && k < d.next {
		d.late++
		return
	}
	i := d.item(item)
	var key, val uint64
	if d.dedup {
		key = (fnv64(user) ^ uint64(i)*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
		val = uint64(i)<<32 | uint64(w)
	} else {
		amount := w
		if d.useValue {
			switch {
			case math.IsNaN(value):
				d.valueNull++
				amount = 0
			case value < 0:
				d.valueNeg++
				amount = 0
			default:
				// Rounded per row, then summed in integers: the sum does not depend on order.
				amount = int64(math.Round(min(value, MaxValue) * float64(w)))
			}
		}
		key, val = uint64(i), uint64(amount)
	}
	acc := d.lastAcc
	if acc == nil || k != d.lastK {
		if acc = d.open[k]; acc == nil {
			acc = &windowAcc{}
			d.open[k] = acc
		}
		d.lastK, d.lastAcc = k, acc
	}
	acc.pairs = append(acc.pairs, pair{key, val})
	if category != "" && d.items.cat[i] < 0 {
		// Categories are taken when the window closes, from that window's events (the
		// smallest name when they differ), so that the order of arrival never matters.
		c := d.category(category)
		if acc.cats == nil {
			acc.cats = map[int32]int32{}
		}
		if old, ok := acc.cats[i]; !ok || d.catIDs[c] < d.catIDs[old] {
			acc.cats[i] = c
		}
	}
	d.events++
	if t > d.watermark || d.events == 1 {
		d.watermark = t
	}
}

func (d *Detector) item(id string) int32 {
	if i, ok := d.itemIdx[id]; ok {
		return i
	}
	i := int32(len(d.itemIDs))
	id = strings.Clone(id) // id may point into an Arrow buffer released after the batch
	d.itemIDs = append(d.itemIDs, id)
	d.itemIdx[id] = i
	s := &d.items
	s.num = append(s.num, 0)
	s.den = append(s.den, 0)
	for h := range s.seas {
		s.seas[h] = append(s.seas[h], 0, 0)
	}
	s.cusum = append(s.cusum, 0)
	if d.itemPhi {
		s.phiA = append(s.phiA, 0)
		s.phiB = append(s.phiB, 0)
	}
	s.first = append(s.first, math.MaxInt64)
	s.cat = append(s.cat, -1)
	return i
}

// category interns a category name.
func (d *Detector) category(category string) int32 {
	c, ok := d.catIdx[category]
	if !ok {
		c = int32(len(d.catIDs))
		category = strings.Clone(category)
		d.catIDs = append(d.catIDs, category)
		d.catIdx[category] = c
		cs := &d.cats
		cs.num = append(cs.num, 0)
		cs.den = append(cs.den, 0)
		cs.items = append(cs.items, 0)
		for range d.dayPhases {
			cs.dayA = append(cs.dayA, 0)
			cs.dayB = append(cs.dayB, 0)
		}
		for range d.weekPhases {
			cs.wkA = append(cs.wkA, 0)
			cs.wkB = append(cs.wkB, 0)
		}
	}
	return c
}

// Advance closes every open window whose end plus the allowed lateness the watermark has
// passed, oldest first, and returns their results (windows without events included, with no
// rows).
func (d *Detector) Advance() []Window {
	if d.events == 0 {
		return nil
	}
	if !d.started {
		d.started = true
		d.next = math.MaxInt64
		for k := range d.open {
			d.next = min(d.next, k)
		}
	}
	var out []Window
	for {
		end := d.originUS + (d.next+1)*d.winUS
		if d.watermark < end+d.latenessUS {
			return out
		}
		acc := d.open[d.next]
		delete(d.open, d.next)
		if acc == d.lastAcc {
			d.lastAcc = nil
		}
		out = append(out, d.close(d.next, acc))
		d.next++
	}
}

// close processes window k: scores every tracked item against its forecast, then updates the
// model with the window's counts.
func (d *Detector) close(k int64, acc *windowAcc) Window {
	res := Window{Index: k, Start: d.WindowStart(k)}
	if acc == nil {
		return res
	}
	n := len(d.itemIDs)
	nc := len(d.catIDs)
	d.cur = grow(d.cur, n)
	// Distinct (user, item) pairs, each with its largest weight; or every row's amount.
	var total int64
	var touched []int32
	if d.dedup {
		for _, p := range d.dedupe(acc.pairs) {
			w := uint32(p.val)
			i := int32(p.val >> 32)
			if d.cur[i] == 0 && w > 0 {
				touched = append(touched, i)
			}
			d.cur[i] += int64(w)
			total += int64(w)
		}
	} else {
		for _, p := range acc.pairs {
			i, w := int32(p.key), int64(p.val)
			if d.cur[i] == 0 && w > 0 {
				touched = append(touched, i)
			}
			d.cur[i] += w
			total += w
		}
	}
	acc.pairs = nil
	for i, c := range acc.cats {
		if d.items.cat[i] < 0 {
			d.items.cat[i] = c
			if d.items.first[i] != math.MaxInt64 {
				d.cats.items[c]++ // already active: counted in its category from now on
			}
		}
	}
	if total == 0 {
		for _, i := range touched {
			d.cur[i] = 0
		}
		return res
	}
	d.catCnt = grow(d.catCnt, nc)
	if cap(d.flagged) < n {
		d.flagged = make([]bool, n)
	}
	d.flagged = d.flagged[:n]
	clear(d.flagged)
	for _, i := range touched {
		c := d.cur[i]
		if ci := d.items.cat[i]; ci >= 0 {
			d.catCnt[ci] += c
		}
		if d.items.first[i] == math.MaxInt64 {
			// The item's model starts with its first closed window with events, whenever it
			// was first read: batch and follow then agree.
			d.items.first[i] = k
			d.active++
			if ci := d.items.cat[i]; ci >= 0 {
				d.cats.items[ci]++
			}
		}
	}
	T := float64(total) / fixedPoint
	res.Total = T

	// Phases.
	var hItem, hDay, hWeek int
	if d.dayPeriod > 0 {
		ph := mod(k, d.dayPeriod)
		hItem = int(ph * int64(d.itemPhases) / d.dayPeriod)
		hDay = int(ph * int64(d.dayPhases) / d.dayPeriod)
	}
	if d.weekPeriod > 0 {
		hWeek = int(mod(k, d.weekPeriod) * int64(d.weekPhases) / d.weekPeriod)
		if d.itemWeekly {
			hItem = int(mod(k, d.weekPeriod) * int64(d.itemPhases) / d.weekPeriod)
		}
	}
	warmGlobal := d.seen >= d.warmup
	delta2 := d.delta2
	spike := d.siteSpike(T, hDay, hWeek, warmGlobal)
	res.Spike = spike
	if spike > 1 {
		// A site-wide spike (a marketing e-mail): its extra traffic need not follow the usual
		// mix of items, so each item's share is less certain in proportion to the extra part.
		f := 0.6 * (spike - 1) / spike
		delta2 += f * f
	}

	// Category forecasts (relative to the site-wide volume).
	cs := &d.cats
	catDay := make([]float64, nc)
	catWeek := make([]float64, nc)
	catLevel := make([]float64, nc)
	for c := range nc {
		catDay[c], catWeek[c] = 1, 1
		if d.dayPhases > 0 {
			j := c*d.dayPhases + hDay
			catDay[c] = (cs.dayA[j] + kappaCat) / (cs.dayB[j] + kappaCat)
		}
		if d.weekPhases > 0 {
			j := c*d.weekPhases + hWeek
			catWeek[c] = (cs.wkA[j] + kappaCat) / (cs.wkB[j] + kappaCat)
		}
		catLevel[c] = (cs.num[c] + priorEvents) / (cs.den[c] + priorEvents*float64(max(1, d.active))/float64(max(1, cs.items[c])))
	}

	// Items: forecast, score, update; in parallel over fixed chunks of items when there are
	// many (each item's state is its own; the cross-item sums are in fixed point, so the
	// result does not depend on the split).
	wc := &windowCtx{k: k, T: T, delta2: delta2, spike: spike, warmGlobal: warmGlobal, siteF: d.siteForecast,
		nItems: float64(max(1, d.active)), catDay: catDay, catWeek: catWeek, catLevel: catLevel, weekly: d.itemWeekly}
	if d.itemPhases > 0 {
		wc.seas = d.items.seas[hItem]
	}
	const chunk = 8192
	parts := make([]itemsOut, (n+chunk-1)/chunk)
	if len(parts) <= 1 {
		for j := range parts {
			parts[j] = d.scoreItems(wc, j*chunk, min(n, (j+1)*chunk))
		}
	} else {
		var g errgroup.Group
		g.SetLimit(runtime.GOMAXPROCS(0))
		for j := range parts {
			g.Go(func() error {
				parts[j] = d.scoreItems(wc, j*chunk, min(n, (j+1)*chunk))
				return nil
			})
		}
		g.Wait()
	}
	var dispNum, dispDen, deltaNum, deltaDen int64
	excess := map[int32]int64{}
	for _, p := range parts {
		res.Trending = append(res.Trending, p.rows...)
		for _, e := range p.excess {
			excess[e.cat] += e.excess
		}
		dispNum, dispDen, deltaNum, deltaDen = dispNum+p.dispNum, dispDen+p.dispDen, deltaNum+p.deltaNum, deltaDen+p.deltaDen
	}
	// Site-wide dispersion and forecast error.
	const lam = 0.97
	lamDisp, lamDelta := lam, lam
	if d.itemPhi {
		// trending-v2: a running mean (the prior counting one window) until the EWMA's own
		// horizon of about 33 windows: a month of daily windows would otherwise be scored with
		// the prior's variance.
		lamDisp = min(lam, float64(d.dispN+1)/float64(d.dispN+2))
		lamDelta = min(lam, float64(d.deltaN+1)/float64(d.deltaN+2))
	}
	if dispDen > 0 {
		d.disp = max(1, min(5, lamDisp*d.disp+(1-lamDisp)*float64(dispNum)/float64(dispDen)))
		d.dispN++
	}
	if deltaDen > 0 {
		d.delta2 = max(1e-4, min(0.25, lamDelta*d.delta2+(1-lamDelta)*float64(deltaNum)/fixedPoint/float64(deltaDen)))
		d.deltaN++
	}
	// Category updates.
	for c := range nc {
		cnt := float64(max(0, d.catCnt[c]-excess[int32(c)])) / fixedPoint
		cs.num[c] = d.lambdaL*cs.num[c] + cnt
		cs.den[c] = d.lambdaL*cs.den[c] + T*catDay[c]*catWeek[c]
		if d.dayPhases > 0 {
			j := c*d.dayPhases + hDay
			cs.dayA[j] = d.lambdaS*cs.dayA[j] + cnt
			cs.dayB[j] = d.lambdaS*cs.dayB[j] + catLevel[c]*T*catWeek[c]
		}
		if d.weekPhases > 0 {
			j := c*d.weekPhases + hWeek
			cs.wkA[j] = d.lambdaW*cs.wkA[j] + cnt
			cs.wkB[j] = d.lambdaW*cs.wkB[j] + catLevel[c]*T*catDay[c]
		}
	}

	// Rankings.
	slices.SortFunc(res.Trending, func(a, b Row) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Count/b.Expected, a.Count/a.Expected); c != 0 {
			return c
		}
		return cmp.Compare(a.Item, b.Item)
	})
	for r := range res.Trending {
		res.Trending[r].Rank = r + 1
	}
	for r, i := range d.topItems(touched) {
		res.Popular = append(res.Popular, Row{Item: d.itemIDs[i], Count: float64(d.cur[i]) / fixedPoint, Rank: r + 1})
	}
	for _, i := range touched {
		d.cur[i] = 0
	}
	clear(d.catCnt)
	d.seen++
	return res
}

// dedupe keeps one entry per key, with the largest weight, compacting pairs in place: an
// open-addressing table of indices (linear probing), about twice as fast as sorting the
// pairs. The order of the result does not matter to close: it sums in fixed point.
func (d *Detector) dedupe(pairs []pair) []pair {
	size, bits := 1, 0
	for size < 2*len(pairs) {
		size, bits = size<<1, bits+1
	}
	if cap(d.slots) < size {
		d.slots = make([]int32, size)
	}
	slots := d.slots[:size]
	clear(slots)
	mask := uint64(size - 1)
	uniq := pairs[:0] // writes never pass the read position
	for _, p := range pairs {
		h := (p.key * 0x9e3779b97f4a7c15) >> (64 - bits) & mask
		for {
			s := slots[h]
			if s == 0 {
				uniq = append(uniq, p)
				slots[h] = int32(len(uniq))
				break
			}
			if q := &uniq[s-1]; q.key == p.key {
				if uint32(p.val) > uint32(q.val) {
					q.val = p.val
				}
				break
			}
			h = (h + 1) & mask
		}
	}
	return uniq
}

// windowCtx is what every item's pass over a window shares (read-only).
type windowCtx struct {
	k                         int64
	T, delta2, spike, nItems  float64
	siteF                     float64 // the site-wide volume's forecast (0: none yet)
	warmGlobal                bool
	catDay, catWeek, catLevel []float64
	seas                      []float32 // the item season's row of this window's phase
	weekly                    bool      // the item season is the weekly one (catWeek is its prior, not a factor)
}

// itemsOut is one chunk's part of a window's result.
type itemsOut struct {
	rows                                 []Row
	dispNum, dispDen, deltaNum, deltaDen int64 // fixed point: order-independent sums
	excess                               []catExcess
}

// catExcess is the part of a flagged item's count above its forecast: it is kept out of its
// category's level and seasons, so that one surging item does not teach its category (and,
// through it, every other item of the category) a weekday that is not there.
type catExcess struct {
	cat    int32
	excess int64 // fixed point
}

// scoreItems forecasts, scores and updates items [lo, hi) for a window. Chunks touch disjoint
// items, so they may run in parallel.
func (d *Detector) scoreItems(w *windowCtx, lo, hi int) (out itemsOut) {
	is := &d.items
	cs := &d.cats
	for i := lo; i < hi; i++ {
		if is.first[i] == math.MaxInt64 {
			continue // no closed window with an event yet
		}
		cfp := d.cur[i]
		c := float64(cfp) / fixedPoint
		base := max(w.T-c, 1)
		ci := is.cat[i]
		sd, sw, prior := 1.0, 1.0, 1/w.nItems
		if ci >= 0 {
			sd, sw = w.catDay[ci], w.catWeek[ci]
			prior = w.catLevel[ci] / float64(max(1, cs.items[ci]))
		}
		// The item's season has the category's as its prior; sOther is the category season
		// that multiplies it (the weekly one, unless the item's season is itself weekly).
		sPrior, sOther := sd, sw
		if w.weekly {
			sPrior, sOther = sd*sw, 1
		}
		sItem := sPrior
		if w.seas != nil {
			sItem = (float64(w.seas[2*i]) + kappaItem*sPrior) / (float64(w.seas[2*i+1]) + kappaItem)
		}
		level := (is.num[i] + priorEvents) / (is.den[i] + priorEvents/prior)
		if d.itemPhi && w.siteF > 0 {
			// trending-v2: the rest of the site is at least its forecast share of the site's
			// forecast. With few items (thirty regions, or four) one large item's low day
			// (a region that did not report) would otherwise lower every other item's
			// forecast with it, and flag them all. One-sided: a site-wide spike still
			// raises every forecast.
			base = max(base, w.siteF/(1+level*sItem*sOther))
		}
		if d.itemPhi && w.k == is.first[i] {
			// trending-v2: the item's first window teaches its season relative to its own
			// count, not to the prior share (a region of 500 cases a day among twenty is far
			// from a twentieth), which would skew that phase's season for weeks.
			level = max(c, 1) / (base * sItem * sOther)
		}
		mu := level * base * sItem * sOther
		warm := w.warmGlobal && w.k-is.first[i] >= d.warmup
		cu := c
		if warm && mu > 0 {
			// Variance disp*mu + delta2*mu² (negative binomial), times the item's own
			// overdispersion phi where it is estimated.
			disp, delta2 := d.disp, w.delta2
			if d.itemPhi {
				phi := min(phiMax, max(phiMin, (float64(is.phiA[i])+phiPrior)/(float64(is.phiB[i])+phiPrior)))
				disp, delta2 = disp*phi, delta2*phi
			}
			sdv := math.Sqrt(disp*mu + delta2*mu*mu)
			cu = min(c, mu+4*sdv+1) // winsorised: a surge does not teach the model at once
			// CUSUM for a shift to cusumShift*mu, scaled by the dispersion.
			// The log-likelihood ratio is divided by the variance inflation of the forecast's
			// own error (quasi-likelihood), so that a busy item's forecast error, or a site-wide
			// spike's different mix of items, does not accumulate as evidence.
			llr := (c*lnShift - (cusumShift-1)*mu) / (disp + delta2*mu)
			s := max(0, float64(is.cusum[i])+llr)
			score := 0.0
			if c >= d.p.MinCount && c > mu {
				score = max(nbTailScore(c/disp, mu/disp, 1/delta2), s/math.Ln10)
			}
			if score >= d.p.Threshold {
				out.rows = append(out.rows, Row{Item: d.itemIDs[i], Count: c, Expected: mu, Score: score})
				d.flagged[i] = true
				if ci >= 0 && c > mu {
					out.excess = append(out.excess, catExcess{cat: ci, excess: int64((c - mu) * fixedPoint)})
				}
				s = 0
			}
			is.cusum[i] = float32(min(s, 1e6))
			if d.itemPhi && s > 0 {
				// While the CUSUM holds evidence of a rise, the level learns at most one
				// standard deviation above the forecast: a slow ramp (an outbreak over two
				// weeks) would otherwise be learnt as the new normal before it is flagged. A
				// lasting shift is still learnt, one standard deviation a window, and each
				// flag resets the CUSUM.
				cu = min(cu, mu+sdv)
			}
			if d.itemPhi && !d.flagged[i] {
				z2 := min(phiClip, (c-mu)*(c-mu)/(d.disp*mu+w.delta2*mu*mu))
				is.phiA[i] = float32(d.lambdaPhi*float64(is.phiA[i]) + z2)
				is.phiB[i] = float32(d.lambdaPhi*float64(is.phiB[i]) + 1)
			}
		}
		// The site-wide dispersion and forecast error learn from warm items; in trending-v2
		// also during the warm-up, from an item's fourth window on, so that the first scored
		// windows do not meet the prior's variance (a month of daily windows).
		if (warm || d.itemPhi && w.k-is.first[i] >= 3) && !d.flagged[i] && mu >= 1 && w.spike < 1.3 {
			r2 := min((c-mu)*(c-mu)/mu, 1000)
			if mu < 20 {
				out.dispNum += int64(r2 * fixedPoint)
				out.dispDen += fixedPoint
			} else {
				out.deltaNum += int64(max(-1, min(1, (r2-d.disp)/mu)) * fixedPoint * fixedPoint)
				out.deltaDen += fixedPoint
			}
		}
		// Update the level and the item's daily season.
		is.num[i] = d.lambdaL*is.num[i] + cu
		is.den[i] = d.lambdaL*is.den[i] + base*sItem*sOther
		if w.seas != nil {
			w.seas[2*i] = float32(d.lambdaS*float64(w.seas[2*i]) + cu)
			w.seas[2*i+1] = float32(d.lambdaS*float64(w.seas[2*i+1]) + level*base*sOther)
		}
	}
	return out
}

// topItems is the Top items of touched by count (ties by id), best first: a bounded min-heap,
// O(n log Top) rather than a sort of every item of the window.
func (d *Detector) topItems(touched []int32) []int32 {
	better := func(a, b int32) bool { // a ranks before b
		if d.cur[a] != d.cur[b] {
			return d.cur[a] > d.cur[b]
		}
		return d.itemIDs[a] < d.itemIDs[b]
	}
	k := d.p.Top
	h := make([]int32, 0, min(k, len(touched))) // h[0] is the worst kept
	down := func(i int) {
		for {
			l, w := 2*i+1, i
			if l < len(h) && better(h[w], h[l]) {
				w = l
			}
			if r := l + 1; r < len(h) && better(h[w], h[r]) {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for _, i := range touched {
		if len(h) < k {
			h = append(h, i)
			for j := len(h) - 1; j > 0; { // up
				p := (j - 1) / 2
				if !better(h[p], h[j]) {
					break
				}
				h[p], h[j] = h[j], h[p]
				j = p
			}
		} else if better(i, h[0]) {
			h[0] = i
			down(0)
		}
	}
	slices.SortFunc(h, func(a, b int32) int {
		if better(a, b) {
			return -1
		}
		return 1
	})
	return h
}

// siteSpike forecasts the site-wide volume of the window from its level and daily and weekly
// seasons, updates that forecast with the observed total, and returns total/forecast (at least
// 1; 1 before warm-up).
func (d *Detector) siteSpike(total float64, hDay, hWeek int, warm bool) float64 {
	level := total
	if d.siteDen > 0 {
		level = d.siteNum / d.siteDen
	}
	kap := 2 * level
	sDay, sWeek := 1.0, 1.0
	if d.dayPhases > 0 {
		sDay = (d.siteDayA[hDay] + kap) / (d.siteDayB[hDay] + kap)
	}
	if d.weekPhases > 0 {
		sWeek = (d.siteWeekA[hWeek] + kap) / (d.siteWeekB[hWeek] + kap)
	}
	ratio := 1.0
	d.siteForecast = 0
	if f := level * sDay * sWeek; warm && f > 0 {
		ratio = max(1, total/f)
		d.siteForecast = f
	}
	d.lastSpike = ratio
	d.siteNum = d.lambdaL*d.siteNum + total
	d.siteDen = d.lambdaL*d.siteDen + sDay*sWeek
	if d.dayPhases > 0 {
		d.siteDayA[hDay] = d.lambdaS*d.siteDayA[hDay] + total
		d.siteDayB[hDay] = d.lambdaS*d.siteDayB[hDay] + level*sWeek
	}
	if d.weekPhases > 0 {
		d.siteWeekA[hWeek] = d.lambdaW*d.siteWeekA[hWeek] + total
		d.siteWeekB[hWeek] = d.lambdaW*d.siteWeekB[hWeek] + level*sDay
	}
	return ratio
}

// fnv64 is FNV-1a: a fixed hash (not maphash's per-process seed), so that every run dedupes
// the same way.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func grow(s []int64, n int) []int64 {
	if len(s) < n {
		s = append(s, make([]int64, n-len(s))...)
	}
	return s
}
