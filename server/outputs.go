package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// The output tables the read APIs serve, as named under the outputs prefix.
const (
	OutSimilar = "similar_items"
	OutRecs    = "user_recommendations"
	OutTrend   = "trending"
	OutPopular = "popular"
)

// PickVersion chooses the snapshot of an output table to serve. The default serves the latest
// version; a model registry can pin another (time travel) by returning t.SnapshotAt(ctx, v).
// It is called on every poll; the table is reloaded only when the version it returns differs
// from the one being served.
type PickVersion func(ctx context.Context, name string, t *table.Table) (*txlog.Snapshot, error)

// OutputsOptions configure Outputs. The zero value is usable.
type OutputsOptions struct {
	// Poll is how often Run checks each table for a new version (default 3 s).
	Poll time.Duration
	// Pick chooses the version of each output table (nil: the latest, read incrementally).
	Pick PickVersion
	// Events is the URI of the interaction table, for the "recent" fallback of a user the model
	// has not seen; empty skips that level.
	Events string
	// RecentFiles is how many of the events table's newest data files a fallback reads (default
	// 8) and RecentEvents how many of the user's events it keeps (default 300).
	RecentFiles, RecentEvents int
	// Logger gets one line per failed load; nil discards.
	Logger *slog.Logger
	// OnSwap, when set, is called after a table's new version is swapped in (e.g.
	// Metrics.ObserveSwap); it must not block.
	OnSwap func(SwapObservation)
}

// Outputs holds the job outputs under a prefix in memory: each table is loaded into maps at a
// version and swapped atomically when the version chosen by OutputsOptions.Pick changes. A
// request reads one loaded version of a table from start to end, so a swap never mixes two
// versions in one answer, and a failed load keeps the previous version serving.
//
// Outputs is safe for concurrent use. Refresh calls are serialised.
type Outputs struct {
	prefix string
	opts   OutputsOptions

	similar, recs      slot[pairTable]
	trending, popular  slot[windowTable]
	events             atomic.Pointer[eventsState]
	refreshMu          sync.Mutex // serialises Refresh; guards the slots' tables and eventsTable
	eventsTable        *table.Table
	eventsMissingNoted bool
}

// slot is one output table: the open table (Refresh's) and the state being served.
type slot[T any] struct {
	name, uri, job string
	t              *table.Table
	last           *txlog.Snapshot // the latest snapshot read (Refresh's), to read only newer commits
	cur            atomic.Pointer[T]
	status         atomic.Pointer[string] // why cur is nil (or the last failed load)
}

func (s *slot[T]) setStatus(msg string) { s.status.Store(&msg) }

// unavailable is the message of a 503 while the slot holds nothing.
func (s *slot[T]) unavailable() string {
	if p := s.status.Load(); p != nil {
		return *p
	}
	return s.uri + " is not loaded yet; retry in a few seconds"
}

// NewOutputs returns the outputs under prefix, empty until the first Refresh (Run refreshes at
// once). It touches no storage.
func NewOutputs(prefix string, opts *OutputsOptions) (*Outputs, error) {
	if prefix == "" {
		return nil, errors.New("server: an outputs prefix is required")
	}
	var o OutputsOptions
	if opts != nil {
		o = *opts
	}
	if o.Poll == 0 {
		o.Poll = 3 * time.Second
	}
	if o.Poll < 0 {
		return nil, errors.New("server: OutputsOptions.Poll must be positive")
	}

	if o.RecentFiles == 0 {
		o.RecentFiles = 8
	}
	if o.RecentEvents == 0 {
		o.RecentEvents = 300
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	src := o.Events
	if src == "" {
		src = "EVENTS"
	}
	als := fmt.Sprintf("run `lake als --source %s --output %s` first", src, prefix)
	trend := fmt.Sprintf("run `lake trending --source %s --output %s` first", src, prefix)
	out := &Outputs{prefix: prefix, opts: o}
	out.similar = slot[pairTable]{name: OutSimilar, job: als}
	out.recs = slot[pairTable]{name: OutRecs, job: als}
	out.trending = slot[windowTable]{name: OutTrend, job: trend}
	out.popular = slot[windowTable]{name: OutPopular, job: trend}
	for _, s := range []interface{ init(prefix string) }{&out.similar, &out.recs, &out.trending, &out.popular} {
		s.init(prefix)
	}
	return out, nil
}

func (s *slot[T]) init(prefix string) {
	s.uri = jobs.ChildURI(prefix, s.name)
	s.setStatus(s.uri + " is not loaded yet; retry in a few seconds")
}

// Prefix is the outputs prefix.
func (o *Outputs) Prefix() string { return o.prefix }

// Versions returns the version served of each output table (absent: not loaded).
func (o *Outputs) Versions() map[string]int64 {
	v := map[string]int64{}
	if p := o.similar.cur.Load(); p != nil {
		v[OutSimilar] = p.version
	}
	if p := o.recs.cur.Load(); p != nil {
		v[OutRecs] = p.version
	}
	if p := o.trending.cur.Load(); p != nil {
		v[OutTrend] = p.version
	}
	if p := o.popular.cur.Load(); p != nil {
		v[OutPopular] = p.version
	}
	return v
}

// Run refreshes at once and then every Poll until ctx ends; it returns ctx's error. Failures
// are logged and retried at the next poll.
func (o *Outputs) Run(ctx context.Context) error {
	tick := time.NewTicker(o.opts.Poll)
	defer tick.Stop()
	for {
		if err := o.Refresh(ctx); err != nil && ctx.Err() == nil {
			o.opts.Logger.Warn("reloading the job outputs", "prefix", o.prefix, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the tables Refresh opened.
func (o *Outputs) Close() error {
	o.refreshMu.Lock()
	defer o.refreshMu.Unlock()
	var errs []error
	for _, t := range []**table.Table{&o.similar.t, &o.recs.t, &o.trending.t, &o.popular.t, &o.eventsTable} {
		if *t != nil {
			errs = append(errs, (*t).Close())
			*t = nil
		}
	}
	return errors.Join(errs...)
}

// Refresh checks every output table once and loads those whose chosen version changed. A table
// that does not exist yet is not an error (its endpoints answer 503); the errors returned are
// failed loads, after which the previous version keeps serving.
func (o *Outputs) Refresh(ctx context.Context) error {
	o.refreshMu.Lock()
	defer o.refreshMu.Unlock()
	errs := []error{
		refreshSlot(ctx, o, &o.similar, func(ctx context.Context, t *table.Table, s *txlog.Snapshot) (*pairTable, error) {
			return loadPairs(ctx, t, s, "item_id", "similar_item_id")
		}),
		refreshSlot(ctx, o, &o.recs, func(ctx context.Context, t *table.Table, s *txlog.Snapshot) (*pairTable, error) {
			return loadPairs(ctx, t, s, "user_id", "item_id")
		}),
		refreshSlot(ctx, o, &o.trending, func(ctx context.Context, t *table.Table, s *txlog.Snapshot) (*windowTable, error) {
			return loadWindows(ctx, t, s, true)
		}),
		refreshSlot(ctx, o, &o.popular, func(ctx context.Context, t *table.Table, s *txlog.Snapshot) (*windowTable, error) {
			return loadWindows(ctx, t, s, false)
		}),
		o.refreshEventsLocked(ctx),
	}
	return errors.Join(errs...)
}

type versioned interface{ pairTable | windowTable }

func versionOf[T versioned](p *T) int64 {
	switch v := any(p).(type) {
	case *pairTable:
		return v.version
	case *windowTable:
		return v.version
	}
	return -1
}

func refreshSlot[T versioned](ctx context.Context, o *Outputs, s *slot[T], load func(context.Context, *table.Table, *txlog.Snapshot) (*T, error)) error {
	if s.t == nil {
		t, err := table.Open(ctx, s.uri, nil)
		if errors.Is(err, txlog.ErrNotATable) {
			if s.cur.Load() == nil {
				s.setStatus(fmt.Sprintf("%s is not a table yet: %s", s.uri, s.job))
			}
			return nil
		}
		if err != nil {
			if s.cur.Load() == nil {
				s.setStatus(fmt.Sprintf("cannot open %s: %v", s.uri, err))
			}
			return fmt.Errorf("open %s: %w", s.uri, err)
		}
		s.t = t
	}
	var snap *txlog.Snapshot
	var err error
	switch {
	case o.opts.Pick != nil:
		snap, err = o.opts.Pick(ctx, s.name, s.t)
	case s.last != nil:
		snap, err = s.t.Update(ctx, s.last)
	default:
		snap, err = s.t.Snapshot(ctx)
	}
	if err == nil && o.opts.Pick == nil {
		s.last = snap
	}
	if err != nil {
		if errors.Is(err, txlog.ErrNotATable) && s.cur.Load() == nil {
			s.setStatus(fmt.Sprintf("%s is not a table yet: %s", s.uri, s.job))
			return nil
		}
		return fmt.Errorf("%s: choose a version: %w", s.uri, err)
	}
	if cur := s.cur.Load(); cur != nil && versionOf(cur) == snap.Version() {
		return nil
	}
	start := time.Now()
	next, err := load(ctx, s.t, snap)
	if err != nil {
		if s.cur.Load() == nil {
			s.setStatus(fmt.Sprintf("cannot load %s version %d: %v", s.uri, snap.Version(), err))
		}
		return fmt.Errorf("load %s version %d: %w", s.uri, snap.Version(), err)
	}
	prev := int64(-1)
	if cur := s.cur.Load(); cur != nil {
		prev = versionOf(cur)
	}
	s.cur.Store(next)
	if o.opts.OnSwap != nil {
		o.opts.OnSwap(SwapObservation{Table: s.name, Version: snap.Version(), Previous: prev, Committed: snap.Timestamp(), Served: time.Now()})
	}
	o.opts.Logger.Info("serving job output", "table", s.uri, "version", snap.Version(), "seconds", time.Since(start).Seconds())
	return nil
}

// ranked is one entry of a list: an item, its score and rank.
type ranked struct {
	item  string
	score float64
	rank  int32
}

// pairTable is similar_items or user_recommendations at one version: key -> list by rank.
type pairTable struct {
	version int64
	lists   map[string][]ranked
}

// windowRow is one row of trending or popular.
type windowRow struct {
	item     string
	count    int64
	score    float64
	expected float64 // trending: the forecast count (NaN when null); popular: NaN
	rank     int32
}

// windowTable is trending or popular at one version.
type windowTable struct {
	version int64
	starts  []time.Time           // the windows with rows, ascending
	rows    map[int64][]windowRow // by window start (epoch µs), by rank
	length  time.Duration         // the window length (0: unknown)
	anchor  time.Time             // a window boundary
	latest  time.Time             // the latest closed window (it may have no rows)
}

// column returns rec's column name as T, or an error naming the expected type.
func column[T arrow.Array](rec arrow.RecordBatch, name, want string) (T, error) {
	var zero T
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return zero, fmt.Errorf("no %s column", name)
	}
	c, ok := rec.Column(idx[0]).(T)
	if !ok {
		return zero, fmt.Errorf("column %s is %s, want %s", name, rec.Column(idx[0]).DataType(), want)
	}
	return c, nil
}

// interner shares the strings of repeated ids (a similar item appears in many lists).
type interner map[string]string

func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	v := strings.Clone(s) // s points into a batch released after the loop body
	in[v] = v
	return v
}

func loadPairs(ctx context.Context, t *table.Table, snap *txlog.Snapshot, keyCol, itemCol string) (*pairTable, error) {
	scan, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Columns: []string{keyCol, itemCol, "score", "rank"}})
	if err != nil {
		return nil, err
	}
	in := interner{}
	lists := map[string][]ranked{}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return nil, err
		}
		keys, err := column[*array.String](rec, keyCol, "string")
		if err != nil {
			return nil, err
		}
		items, err := column[*array.String](rec, itemCol, "string")
		if err != nil {
			return nil, err
		}
		scores, err := column[*array.Float64](rec, "score", "double")
		if err != nil {
			return nil, err
		}
		ranks, err := column[*array.Int32](rec, "rank", "int")
		if err != nil {
			return nil, err
		}
		for i := range int(rec.NumRows()) {
			if keys.IsNull(i) || items.IsNull(i) || ranks.IsNull(i) {
				continue
			}
			k := in.get(keys.Value(i))
			var sc float64
			if !scores.IsNull(i) {
				sc = scores.Value(i)
			}
			lists[k] = append(lists[k], ranked{item: in.get(items.Value(i)), score: sc, rank: ranks.Value(i)})
		}
	}
	for k, l := range lists {
		slices.SortFunc(l, func(a, b ranked) int { return cmp.Compare(a.rank, b.rank) })
		if cap(l) > len(l) {
			lists[k] = slices.Clone(l) // exact size: append grew 20 neighbours to room for 32
		}
	}
	return &pairTable{version: snap.Version(), lists: lists}, nil
}

func loadWindows(ctx context.Context, t *table.Table, snap *txlog.Snapshot, trending bool) (*windowTable, error) {
	cols := []string{"window_start", "item_id", "count", "rank"}
	if trending {
		cols = append(cols, "score", "expected")
	}
	scan, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Columns: cols})
	if err != nil {
		return nil, err
	}
	in := interner{}
	wt := &windowTable{version: snap.Version(), rows: map[int64][]windowRow{}}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return nil, err
		}
		starts, err := column[*array.Timestamp](rec, "window_start", "timestamp")
		if err != nil {
			return nil, err
		}
		items, err := column[*array.String](rec, "item_id", "string")
		if err != nil {
			return nil, err
		}
		counts, err := column[*array.Int64](rec, "count", "bigint")
		if err != nil {
			return nil, err
		}
		ranks, err := column[*array.Int32](rec, "rank", "int")
		if err != nil {
			return nil, err
		}
		var scores, expected *array.Float64
		if trending {
			if scores, err = column[*array.Float64](rec, "score", "double"); err != nil {
				return nil, err
			}
			if expected, err = column[*array.Float64](rec, "expected", "double"); err != nil {
				return nil, err
			}
		}
		for i := range int(rec.NumRows()) {
			if starts.IsNull(i) || items.IsNull(i) || ranks.IsNull(i) {
				continue
			}
			r := windowRow{item: in.get(items.Value(i)), rank: ranks.Value(i), expected: math.NaN()}
			if !counts.IsNull(i) {
				r.count = counts.Value(i)
			}
			r.score = float64(r.count)
			if scores != nil {
				r.score = 0
				if !scores.IsNull(i) {
					r.score = scores.Value(i)
				}
				if !expected.IsNull(i) {
					r.expected = expected.Value(i)
				}
			}
			ts := int64(starts.Value(i))
			wt.rows[ts] = append(wt.rows[ts], r)
		}
	}
	for ts, l := range wt.rows {
		slices.SortFunc(l, func(a, b windowRow) int { return cmp.Compare(a.rank, b.rank) })
		wt.starts = append(wt.starts, time.UnixMicro(ts).UTC())
	}
	slices.SortFunc(wt.starts, func(a, b time.Time) int { return a.Compare(b) })
	if n := len(wt.starts); n > 0 {
		wt.latest, wt.anchor = wt.starts[n-1], wt.starts[n-1]
		for i := 1; i < n; i++ { // the smallest gap between windows with rows
			if d := wt.starts[i].Sub(wt.starts[i-1]); wt.length == 0 || d < wt.length {
				wt.length = d
			}
		}
	}
	// The job's lineage knows better: the window length and origin, and the last window closed
	// (which may have no trending rows).
	if h, err := t.History(ctx, 64); err == nil {
		for _, e := range h {
			if e.Version > snap.Version() || e.CommitInfo == nil {
				continue
			}
			p := e.CommitInfo.OperationParameters
			through, _ := p["throughWindow"].(string)
			if through == "" { // not a trending commit (e.g. a compaction): look further back
				continue
			}
			if tw, err := time.Parse(time.RFC3339Nano, through); err == nil && tw.After(wt.latest) {
				wt.latest = tw.UTC()
			}
			if params, ok := p["parameters"].(string); ok {
				var pm struct {
					Window string `json:"window"`
					Origin string `json:"windowOrigin"`
				}
				if json.Unmarshal([]byte(params), &pm) == nil {
					if d, err := time.ParseDuration(pm.Window); err == nil && d > 0 {
						wt.length = d
					}
					if or, err := time.Parse(time.RFC3339Nano, pm.Origin); err == nil {
						wt.anchor = or
					}
				}
			}
			break
		}
	}
	if wt.length <= 0 { // one window and no lineage: assume lake trending's default length
		wt.length = time.Hour
	}
	if wt.anchor.IsZero() && !wt.latest.IsZero() {
		wt.anchor = wt.latest
	}
	return wt, nil
}

// window returns the start of the window holding at, or of the latest closed window when at
// is zero; ok is false when there is no such closed window.
func (wt *windowTable) window(at time.Time) (start time.Time, ok bool) {
	if wt.latest.IsZero() {
		return time.Time{}, false
	}
	if at.IsZero() {
		return wt.latest, true
	}
	n := at.Sub(wt.anchor) / wt.length
	start = wt.anchor.Add(n * wt.length)
	if start.After(at) {
		start = start.Add(-wt.length)
	}
	if start.After(wt.latest) || (len(wt.starts) > 0 && start.Before(wt.starts[0])) {
		return start, false
	}
	return start.UTC(), true
}

// eventsState is the events table's snapshot and its newest data files, for the recent fallback.
// The index of who touched what in those files is built once, on the first request that needs
// it, and serves every later one until the events table has a new version.
type eventsState struct {
	t      *table.Table
	snap   *txlog.Snapshot
	newest []*txlog.Add

	mu     sync.Mutex
	built  bool
	recent map[string][]string // user -> distinct items, most recent first
}

// maxRecentIndexRows bounds the rows the recent index reads (the newest files first).
const maxRecentIndexRows = 1_000_000

func (o *Outputs) refreshEventsLocked(ctx context.Context) error {
	if o.opts.Events == "" || o.opts.RecentFiles < 0 {
		return nil
	}
	if o.eventsTable == nil {
		t, err := table.Open(ctx, o.opts.Events, nil)
		if err != nil {
			if errors.Is(err, txlog.ErrNotATable) {
				return nil
			}
			return fmt.Errorf("open %s: %w", o.opts.Events, err)
		}
		o.eventsTable = t
	}
	var prev *txlog.Snapshot
	if cur := o.events.Load(); cur != nil {
		prev = cur.snap
	}
	var snap *txlog.Snapshot
	var err error
	if prev != nil {
		snap, err = o.eventsTable.Update(ctx, prev)
	} else {
		snap, err = o.eventsTable.Snapshot(ctx)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", o.opts.Events, err)
	}
	if prev != nil && snap.Version() == prev.Version() {
		return nil
	}
	o.events.Store(&eventsState{t: o.eventsTable, snap: snap, newest: newestFiles(snap, o.opts.RecentFiles)})
	return nil
}

// newestFiles returns the n data files of snap modified last, newest first, in one pass (the
// snapshot's own list is shared and may be long).
func newestFiles(snap *txlog.Snapshot, n int) []*txlog.Add {
	newer := func(a, b *txlog.Add) int { // < 0 when a is newer
		return cmp.Or(cmp.Compare(b.ModificationTime, a.ModificationTime), strings.Compare(b.Path, a.Path))
	}
	out := make([]*txlog.Add, 0, n+1)
	snap.AllFiles(func(a *txlog.Add) bool {
		if len(out) == n && newer(a, out[n-1]) >= 0 {
			return true
		}
		i, _ := slices.BinarySearchFunc(out, a, newer)
		out = slices.Insert(out, i, a)
		if len(out) > n {
			out = out[:n]
		}
		return true
	})
	return out
}

// recentItems returns the distinct items user touched in the newest files of the events table,
// most recent first; nil without an events table.
func (o *Outputs) recentItems(ctx context.Context, user string) ([]string, error) {
	ev := o.events.Load()
	if ev == nil || len(ev.newest) == 0 {
		return nil, nil
	}
	idx, err := ev.index(ctx, o.opts.RecentEvents)
	if err != nil {
		return nil, err
	}
	return idx[user], nil
}

// index returns the recent index, building it on first use. A failed build (a cancelled
// request) is not kept: the next request tries again.
func (ev *eventsState) index(ctx context.Context, perUser int) (map[string][]string, error) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.built {
		return ev.recent, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	scan, err := reader.NewScan(ctx, ev.t, ev.snap, &reader.ScanOptions{
		Columns: []string{"user_id", "item_id", "timestamp"}, Files: ev.newest, Concurrency: 2,
	})
	if err != nil {
		return nil, err
	}
	type touch struct {
		item string
		ts   int64
	}
	byUser := map[string][]touch{}
	strs := interner{}
	rows := 0
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return nil, err
		}
		users, err := column[*array.String](rec, "user_id", "string")
		if err != nil {
			return nil, err
		}
		items, err := column[*array.String](rec, "item_id", "string")
		if err != nil {
			return nil, err
		}
		tss, err := column[*array.Timestamp](rec, "timestamp", "timestamp")
		if err != nil {
			return nil, err
		}
		for i := range int(rec.NumRows()) {
			if users.IsNull(i) || items.IsNull(i) || tss.IsNull(i) {
				continue
			}
			u := strs.get(users.Value(i))
			byUser[u] = append(byUser[u], touch{strs.get(items.Value(i)), int64(tss.Value(i))})
		}
		if rows += int(rec.NumRows()); rows >= maxRecentIndexRows {
			break
		}
	}
	recent := make(map[string][]string, len(byUser))
	for u, touches := range byUser {
		slices.SortFunc(touches, func(a, b touch) int { return cmp.Compare(b.ts, a.ts) })
		if len(touches) > perUser {
			touches = touches[:perUser]
		}
		seen := make(map[string]bool, len(touches))
		out := make([]string, 0, len(touches))
		for _, t := range touches {
			if !seen[t.item] {
				seen[t.item] = true
				out = append(out, t.item)
			}
		}
		recent[u] = out
	}
	ev.recent, ev.built = recent, true
	return recent, nil
}
