package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/array"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer/source"
)

// GET /v1/ingest/health: how ingestion went over the last hour.
//
//   - Events per minute: from the events table's commits of the hour, read as commit files (the
//     commitInfo's timestamp and its numOutputRows, else the adds' numRecords). Only commits that
//     bring new rows count (WRITE, STREAMING UPDATE, ...), not compactions or deletes.
//   - The quarantine rate: the quarantine table's rows over the same hour, by the same reading
//     of its commits, over events plus quarantined rows; the reasons are counted in the
//     quarantine table's newest few files (rows ingested within the hour).
//   - The queue lag: Options.QueueLag (null without it, or before the committer knows).
//
// The work is bounded and incremental: a commit file is read once and remembered while it is
// within the hour (at most healthMaxCommits per table, newest first), the newest version is
// found by probing for the next commit files from the last one seen, and the answer is cached
// for healthTTL so a page left open (or many) cannot hammer the store.

const (
	healthWindow      = time.Hour
	healthTTL         = 5 * time.Second
	healthMaxCommits  = 3600 // per table and hour: a commit a second
	healthBatch       = 32   // commit files read per step when reading back
	healthConcurrency = 8
	healthReasonFiles = 4  // newest quarantine files whose reasons are counted
	healthMaxReasons  = 10 // reasons listed; the rest are summed as "other"
	healthReasonRunes = 200
)

// MinuteCount is one minute of GET /v1/ingest/health.
type MinuteCount struct {
	Minute      string `json:"minute"` // its start, RFC 3339
	Events      int64  `json:"events"`
	Quarantined int64  `json:"quarantined"`
}

// ReasonCount is one quarantine reason and its rows.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// IngestHealth is the body of GET /v1/ingest/health.
type IngestHealth struct {
	Table             string `json:"table"`
	QuarantineTable   string `json:"quarantine_table"`
	Version           *int64 `json:"version"`            // the events table's newest version; null: not a table yet
	QuarantineVersion *int64 `json:"quarantine_version"` // null: no quarantine table yet
	GeneratedAt       string `json:"generated_at"`
	// Minutes are the last 60 minutes, oldest first; the last one is the current minute.
	Minutes         []MinuteCount `json:"minutes"`
	Events          int64         `json:"events"`            // rows committed over the hour
	Quarantined     int64         `json:"quarantined"`       // rows quarantined over the hour
	EventsPerMinute float64       `json:"events_per_minute"` // Events / 60
	// QuarantineRate is Quarantined / (Events + Quarantined), 0 when both are 0.
	QuarantineRate float64       `json:"quarantine_rate"`
	Reasons        []ReasonCount `json:"quarantine_reasons"`      // most frequent first
	ReasonFiles    int           `json:"quarantine_reason_files"` // how many newest files the reasons come from
	QueueLag       *float64      `json:"queue_lag_seconds"`       // null: unknown
	Commits        int           `json:"commits"`                 // the events table's data commits in the hour
	Partial        bool          `json:"partial"`                 // the hour held more commits than were read
	Errors         []string      `json:"errors,omitempty"`        // parts that could not be read (the rest is served)
}

// healthState is the cache of GET /v1/ingest/health.
type healthState struct {
	mu         sync.Mutex
	at         time.Time
	ans        *IngestHealth
	events     commitWatch
	quarantine commitWatch
	qsnap      *txlog.Snapshot // the quarantine table, read incrementally
	quri       string
}

func (d *dashboard) handleIngestHealth(w http.ResponseWriter, r *http.Request) {
	ev := d.s.eventsURI()
	if ev == "" {
		writeError(w, http.StatusServiceUnavailable, errNoEvents.Error())
		return
	}
	q, err := d.s.quarantineURI()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	ans := d.health.get(r.Context(), d.s, ev, q)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ans)
}

func (h *healthState) get(ctx context.Context, s *Server, events, quarantine string) *IngestHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := s.opts.Now()
	if h.ans != nil && now.Sub(h.at) < healthTTL && now.Sub(h.at) >= 0 && h.ans.Table == events && h.ans.QuarantineTable == quarantine {
		return h.withLag(s, h.ans)
	}
	// The work goes on if the client leaves: what it reads is remembered for the next call.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	end := now.UTC().Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-healthWindow)
	cutoff := start.UnixMilli()
	ans := &IngestHealth{Table: events, QuarantineTable: quarantine, GeneratedAt: now.UTC().Format(time.RFC3339Nano), Reasons: []ReasonCount{}}
	minutes := int(healthWindow / time.Minute)
	ans.Minutes = make([]MinuteCount, minutes)
	for i := range ans.Minutes {
		ans.Minutes[i].Minute = start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
	}
	bucket := func(ts int64) int {
		return min(max(int((ts-cutoff)/60000), 0), minutes-1)
	}
	fail := func(what string, err error) {
		s.opts.Logger.Warn("ingest health", "reading", what, "err", err)
		ans.Errors = append(ans.Errors, what+": "+err.Error())
	}

	if ok, err := h.events.refresh(ctx, events, cutoff); err != nil {
		fail(events, err)
	} else if ok {
		v := h.events.latest
		ans.Version = &v
		for _, c := range h.events.commits {
			if c.ts >= cutoff && c.data {
				ans.Minutes[bucket(c.ts)].Events += c.rows
				ans.Events += c.rows
				ans.Commits++
			}
		}
		ans.Partial = h.events.partial
	}
	if ok, err := h.quarantine.refresh(ctx, quarantine, cutoff); err != nil {
		fail(quarantine, err)
	} else if ok {
		v := h.quarantine.latest
		ans.QuarantineVersion = &v
		for _, c := range h.quarantine.commits {
			if c.ts >= cutoff && c.data {
				ans.Minutes[bucket(c.ts)].Quarantined += c.rows
				ans.Quarantined += c.rows
			}
		}
		ans.Partial = ans.Partial || h.quarantine.partial
		if ans.Quarantined > 0 {
			if err := h.reasons(ctx, quarantine, start, ans); err != nil {
				fail(quarantine+" reasons", err)
			}
		}
	}
	ans.EventsPerMinute = float64(ans.Events) / float64(minutes)
	if total := ans.Events + ans.Quarantined; total > 0 {
		ans.QuarantineRate = float64(ans.Quarantined) / float64(total)
	}
	h.ans, h.at = ans, now
	return h.withLag(s, ans)
}

// withLag returns a copy of ans with the queue lag as of now (a cheap hook, not cached).
func (h *healthState) withLag(s *Server, ans *IngestHealth) *IngestHealth {
	out := *ans
	out.QueueLag = nil
	if s.opts.QueueLag != nil {
		if lag, ok := s.opts.QueueLag(); ok {
			sec := lag.Seconds()
			out.QueueLag = &sec
		}
	}
	return &out
}

// reasons counts the reasons of the rows ingested since start in the quarantine table's
// newest files.
func (h *healthState) reasons(ctx context.Context, uri string, start time.Time, ans *IngestHealth) error {
	t := h.quarantine.t
	if t == nil {
		return nil
	}
	var err error
	switch {
	case h.qsnap == nil || h.quri != uri:
		h.qsnap, err = t.Snapshot(ctx)
	default:
		h.qsnap, err = t.Update(ctx, h.qsnap)
	}
	if err != nil {
		h.qsnap = nil
		return err
	}
	h.quri = uri
	files := newestFiles(h.qsnap, healthReasonFiles)
	if len(files) == 0 {
		return nil
	}
	scan, err := reader.NewScan(ctx, t, h.qsnap, &reader.ScanOptions{Columns: []string{"reason", "ingested_at"}, Files: files, Concurrency: 2})
	if err != nil {
		return err
	}
	since := start.UnixMicro()
	counts := map[string]int64{}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return err
		}
		reasons, err := column[*array.String](rec, "reason", "string")
		if err != nil {
			return err
		}
		at, err := column[*array.Timestamp](rec, "ingested_at", "timestamp")
		if err != nil {
			return err
		}
		for i := range int(rec.NumRows()) {
			if !at.IsNull(i) && int64(at.Value(i)) < since {
				continue
			}
			reason := "(none)"
			if !reasons.IsNull(i) {
				reason = shortReason(reasons.Value(i))
			}
			counts[reason]++
		}
	}
	l := make([]ReasonCount, 0, len(counts))
	for r, n := range counts {
		l = append(l, ReasonCount{Reason: r, Count: n})
	}
	slices.SortFunc(l, func(a, b ReasonCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
	})
	if len(l) > healthMaxReasons {
		other := ReasonCount{Reason: "other (" + strconv.Itoa(len(l)-healthMaxReasons+1) + " reasons)"}
		for _, r := range l[healthMaxReasons-1:] {
			other.Count += r.Count
		}
		l = append(l[:healthMaxReasons-1], other)
	}
	ans.Reasons, ans.ReasonFiles = l, len(files)
	return nil
}

// shortReason cuts a reason to healthReasonRunes characters (a reason may quote the record).
func shortReason(s string) string {
	s = strings.Clone(s) // s points into a batch released after the loop body
	if utf8.RuneCountInString(s) <= healthReasonRunes {
		return s
	}
	r := []rune(s)
	return string(r[:healthReasonRunes]) + "…"
}

// quarantineOf is the default quarantine table of an events table.
func quarantineOf(events string) (string, error) { return source.QuarantineURI(events) }

// commitWatch follows one table's commits of the last hour by reading its commit files.
type commitWatch struct {
	uri     string
	t       *table.Table // open while the watch follows uri (for the server's life)
	latest  int64        // the newest version seen
	commits map[int64]commitRows
	partial bool // the newest healthMaxCommits commits did not reach back to the cutoff
}

// commitRows is what one commit brought.
type commitRows struct {
	ts   int64 // epoch ms
	rows int64
	data bool // it brings new rows (not a compaction, a delete, a schema change)
}

// refresh reads the commits made since the last call (on the first, those of the hour back to
// cutoff) and forgets those older than cutoff. ok is false while uri is not a table.
func (w *commitWatch) refresh(ctx context.Context, uri string, cutoff int64) (ok bool, err error) {
	if w.uri != uri || w.t == nil {
		if w.t != nil {
			w.t.Close()
		}
		*w = commitWatch{uri: uri, latest: -1, commits: map[int64]commitRows{}}
		t, err := table.Open(ctx, uri, nil)
		if errors.Is(err, txlog.ErrNotATable) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		w.t = t
	}
	b := w.t.Bucket()
	from := w.latest
	if from < 0 {
		from = 0
		lc, err := w.t.Log().ReadLastCheckpoint(ctx)
		if err != nil {
			return false, err
		}
		if lc != nil {
			from = lc.Version
		} else if ok, err := b.Exists(ctx, txlog.CommitKey(0)); err != nil {
			return false, err
		} else if !ok {
			// Early commits cleaned up and no _last_checkpoint to start from: ask the log, once.
			h, err := w.t.History(ctx, 1)
			if err != nil {
				return false, err
			}
			if len(h) > 0 {
				from = h[0].Version
			}
		}
	}
	latest, err := newestCommit(ctx, b, from)
	if err != nil {
		return false, err
	}
	if w.latest < 0 || latest-w.latest > healthMaxCommits {
		// Read back from the newest commit until the cutoff.
		clear(w.commits)
		w.partial = true
		for v := latest; v >= 0 && latest-v < healthMaxCommits; {
			lo := max(0, v-healthBatch+1, latest-healthMaxCommits+1)
			oldest, missing, err := w.read(ctx, b, lo, v)
			if err != nil {
				return false, err
			}
			if oldest < cutoff || missing || lo == 0 {
				w.partial = false
				break
			}
			v = lo - 1
		}
	} else if latest > w.latest {
		if _, _, err := w.read(ctx, b, w.latest+1, latest); err != nil {
			return false, err
		}
	}
	w.latest = latest
	for v, c := range w.commits {
		if c.ts < cutoff {
			delete(w.commits, v)
			w.partial = false
		}
	}
	return true, nil
}

// read reads the commits lo..hi into w.commits; it returns the oldest commit time read and
// whether a commit file was missing (cleaned up, or the log starts later).
func (w *commitWatch) read(ctx context.Context, b *blob.Bucket, lo, hi int64) (oldest int64, missing bool, err error) {
	res := make([]*commitRows, hi-lo+1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(healthConcurrency)
	for v := lo; v <= hi; v++ {
		g.Go(func() error {
			c, err := readCommitRows(gctx, b, v)
			res[v-lo] = c
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, false, err
	}
	oldest = 1<<63 - 1
	for i, c := range res {
		if c == nil {
			missing = true
			continue
		}
		w.commits[lo+int64(i)] = *c
		oldest = min(oldest, c.ts)
	}
	return oldest, missing, nil
}

// dataOperations are the operations whose rows are new data.
var dataOperations = map[string]bool{
	"": true, "WRITE": true, "STREAMING UPDATE": true, "CREATE TABLE AS SELECT": true,
	"REPLACE TABLE AS SELECT": true, "MERGE": true, "COPY INTO": true,
}

// readCommitRows reads one commit file; nil when it does not exist.
func readCommitRows(ctx context.Context, b *blob.Bucket, v int64) (*commitRows, error) {
	key := txlog.CommitKey(v)
	data, err := b.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	acts, err := txlog.DecodeActions(data)
	if err != nil {
		return nil, err
	}
	var ci *txlog.CommitInfo
	var addRows int64
	for _, a := range acts {
		switch {
		case a.CommitInfo != nil:
			ci = a.CommitInfo
		case a.Add != nil && a.Add.DataChange && a.Add.Stats != "":
			var st struct {
				NumRecords int64 `json:"numRecords"`
			}
			if json.Unmarshal([]byte(a.Add.Stats), &st) == nil {
				addRows += st.NumRecords
			}
		}
	}
	c := &commitRows{rows: addRows, data: true}
	switch {
	case ci != nil && ci.InCommitTimestamp != nil:
		c.ts = *ci.InCommitTimestamp
	case ci != nil && ci.Timestamp != nil:
		c.ts = *ci.Timestamp
	default:
		attrs, err := b.Attributes(ctx, key)
		if err != nil {
			return nil, err
		}
		c.ts = attrs.ModTime.UnixMilli()
	}
	if ci != nil {
		c.data = dataOperations[ci.Operation]
		if n, ok := metricInt(ci.OperationMetrics, "numOutputRows"); ok {
			c.rows = n
		}
	}
	return c, nil
}

// metricInt reads an operation metric: Delta writes them as strings, some engines as numbers.
func metricInt(m map[string]any, key string) (int64, bool) {
	switch v := m[key].(type) {
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	case float64:
		return int64(v), true
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	}
	return 0, false
}

// newestCommit returns the newest commit version at or after from (whose commit is taken to
// exist): it probes from+1, from+2, from+4, ... and then bisects, a few requests when little
// was committed since.
func newestCommit(ctx context.Context, b *blob.Bucket, from int64) (int64, error) {
	exists := func(v int64) (bool, error) { return b.Exists(ctx, txlog.CommitKey(v)) }
	lo, step := from, int64(1)
	var hi int64
	for {
		ok, err := exists(lo + step)
		if err != nil {
			return 0, err
		}
		if !ok {
			hi = lo + step
			break
		}
		lo += step
		step *= 2
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := exists(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}
