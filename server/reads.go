package server

import (
	"cmp"
	"crypto/subtle"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The read APIs over the job outputs (Options.Reads; see Outputs for loading and swapping):
//
//   - GET /v1/items/{id}/similar?k=N: {"item_id", "version", "items": [{"item_id", "score",
//     "rank"}]} from PREFIX/similar_items; an unknown item is 404.
//   - GET /v1/users/{id}/recommendations?k=N: the same shape with "user_id" and "source":
//     "model" (PREFIX/user_recommendations), else "recent" (items similar to those the user
//     touched in the newest files of the events table, summed over them, touched items left
//     out), else "trending" (the latest closed window), else "popular".
//   - GET /v1/trending?k=N[&at=RFC3339], GET /v1/popular?k=N[&at=RFC3339]: {"window_start",
//     "version", "items": [{"item_id", "count", "score", "rank"}]}, the latest closed window or
//     the one holding at (404 when no closed window holds it); popular's score is its count.
//
// k defaults to 10 and is capped at Options.MaxK; anything but a positive integer is 400. The
// version answered from is in the body and the Lake-Version header. A table not there yet is
// 503 naming the job to run. With Options.ReadToken set, every read needs `Authorization:
// Bearer TOKEN` (401 otherwise). Each handler loads the state of the table it answers from
// once, so an answer comes from one version even while a swap happens.

// VersionHeader carries the output table version an answer was served from.
const VersionHeader = "Lake-Version"

// Recommendation sources.
const (
	SourceModel    = "model"
	SourceRecent   = "recent"
	SourceTrending = "trending"
	SourcePopular  = "popular"
)

// ItemScore is one entry of a similar-items or recommendations answer.
type ItemScore struct {
	ItemID string  `json:"item_id"`
	Score  float64 `json:"score"`
	Rank   int32   `json:"rank"`
}

// SimilarAnswer is the body of GET /v1/items/{id}/similar.
type SimilarAnswer struct {
	ItemID  string      `json:"item_id"`
	Version int64       `json:"version"`
	Items   []ItemScore `json:"items"`
}

// RecsAnswer is the body of GET /v1/users/{id}/recommendations.
type RecsAnswer struct {
	UserID  string      `json:"user_id"`
	Version int64       `json:"version"`
	Source  string      `json:"source"`
	Items   []ItemScore `json:"items"`
}

// WindowItem is one entry of a trending or popular answer.
type WindowItem struct {
	ItemID string  `json:"item_id"`
	Count  int64   `json:"count"`
	Score  float64 `json:"score"`
	Rank   int32   `json:"rank"`
}

// WindowAnswer is the body of GET /v1/trending and GET /v1/popular.
type WindowAnswer struct {
	WindowStart string       `json:"window_start"`
	Version     int64        `json:"version"`
	Items       []WindowItem `json:"items"`
}

// reads wraps a read handler: the read metrics, the read token, then the outputs.
func (s *Server) reads(h func(w http.ResponseWriter, r *http.Request, o *Outputs, k int)) http.HandlerFunc {
	return s.metered(func(w http.ResponseWriter, r *http.Request) {
		if !s.readAuthorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lake"`)
			writeError(w, http.StatusUnauthorized, "the read APIs need 'Authorization: Bearer TOKEN' with the server's read token")
			return
		}
		o := s.opts.Reads
		if o == nil {
			writeError(w, http.StatusServiceUnavailable, "this server serves no job outputs: start it with `lake serve --outputs PREFIX`")
			return
		}
		k, msg := s.parseK(r)
		if msg != "" {
			writeError(w, http.StatusBadRequest, msg)
			return
		}
		h(w, r, o, k)
	})
}

func (s *Server) readAuthorized(r *http.Request) bool {
	if s.opts.ReadToken == "" {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.opts.ReadToken)) == 1
}

// parseK reads k (default 10), capped at MaxK; a k that is not a positive integer is an error.
func (s *Server) parseK(r *http.Request) (int, string) {
	q := r.URL.Query()
	if !q.Has("k") {
		return min(10, s.opts.MaxK), ""
	}
	v := q.Get("k")
	k, err := strconv.Atoi(v)
	if err != nil || k < 1 {
		return 0, "k=" + strconv.Quote(v) + " is not a positive integer; give e.g. k=10 (at most " + strconv.Itoa(s.opts.MaxK) + ")"
	}
	return min(k, s.opts.MaxK), ""
}

func setVersion(w http.ResponseWriter, v int64) {
	w.Header().Set(VersionHeader, strconv.FormatInt(v, 10))
}

// finite keeps a JSON number encodable.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func scores(l []ranked, k int) []ItemScore {
	l = l[:min(k, len(l))]
	out := make([]ItemScore, len(l))
	for i, e := range l {
		out[i] = ItemScore{ItemID: e.item, Score: finite(e.score), Rank: e.rank}
	}
	return out
}

func (s *Server) handleSimilar(w http.ResponseWriter, r *http.Request, o *Outputs, k int) {
	st := o.similar.cur.Load()
	if st == nil {
		writeError(w, http.StatusServiceUnavailable, o.similar.unavailable())
		return
	}
	id := r.PathValue("id")
	l, ok := st.lists[id]
	setVersion(w, st.version)
	if !ok {
		writeError(w, http.StatusNotFound, "unknown item "+strconv.Quote(id)+": it has no similar items in "+o.similar.uri+" version "+strconv.FormatInt(st.version, 10))
		return
	}
	writeJSON(w, http.StatusOK, SimilarAnswer{ItemID: id, Version: st.version, Items: scores(l, k)})
}

func (s *Server) handleRecs(w http.ResponseWriter, r *http.Request, o *Outputs, k int) {
	recs := o.recs.cur.Load()
	if recs == nil {
		writeError(w, http.StatusServiceUnavailable, o.recs.unavailable())
		return
	}
	id := r.PathValue("id")
	if l, ok := recs.lists[id]; ok {
		setVersion(w, recs.version)
		writeJSON(w, http.StatusOK, RecsAnswer{UserID: id, Version: recs.version, Source: SourceModel, Items: scores(l, k)})
		s.opts.Metrics.read.answeredFrom(SourceModel)
		return
	}
	// A user the model has not seen: items similar to what they touched recently.
	if sim := o.similar.cur.Load(); sim != nil {
		items, err := o.recentItems(r.Context(), id)
		if err != nil {
			s.opts.Logger.Warn("reading a user's recent events", "user", id, "err", err)
		}
		if l := recentSimilar(sim, items, k); len(l) > 0 {
			setVersion(w, sim.version)
			writeJSON(w, http.StatusOK, RecsAnswer{UserID: id, Version: sim.version, Source: SourceRecent, Items: l})
			s.opts.Metrics.read.answeredFrom(SourceRecent)
			return
		}
	}
	// Then what is trending, then what is popular, in their latest closed window.
	for _, f := range []struct {
		slot   *slot[windowTable]
		source string
	}{{&o.trending, SourceTrending}, {&o.popular, SourcePopular}} {
		wt := f.slot.cur.Load()
		if wt == nil {
			continue
		}
		start, ok := wt.window(time.Time{})
		if !ok {
			continue
		}
		rows := wt.rows[start.UnixMicro()]
		if len(rows) == 0 {
			continue
		}
		rows = rows[:min(k, len(rows))]
		l := make([]ItemScore, len(rows))
		for i, e := range rows {
			l[i] = ItemScore{ItemID: e.item, Score: finite(e.score), Rank: int32(i + 1)}
		}
		setVersion(w, wt.version)
		writeJSON(w, http.StatusOK, RecsAnswer{UserID: id, Version: wt.version, Source: f.source, Items: l})
		s.opts.Metrics.read.answeredFrom(f.source)
		return
	}
	writeError(w, http.StatusServiceUnavailable, "no recommendations for unknown user "+strconv.Quote(id)+
		": there are no recent events, no trending and no popular items to fall back on; "+o.popular.job)
}

// recentSimilar scores the items similar to the recently touched ones (most recent first): the
// sum of their similarity scores, an item counting at most once per touched item; touched
// items are left out.
func recentSimilar(sim *pairTable, touched []string, k int) []ItemScore {
	if len(touched) == 0 {
		return nil
	}
	const maxTouched = 50
	touched = touched[:min(len(touched), maxTouched)]
	have := map[string]bool{}
	for _, t := range touched {
		have[t] = true
	}
	score := map[string]float64{}
	for _, t := range touched {
		for _, e := range sim.lists[t] {
			if !have[e.item] {
				score[e.item] += finite(e.score)
			}
		}
	}
	l := make([]ItemScore, 0, len(score))
	for it, sc := range score {
		l = append(l, ItemScore{ItemID: it, Score: sc})
	}
	slices.SortFunc(l, func(a, b ItemScore) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), strings.Compare(a.ItemID, b.ItemID))
	})
	l = l[:min(k, len(l))]
	for i := range l {
		l[i].Rank = int32(i + 1)
	}
	return l
}

func (s *Server) handleTrending(w http.ResponseWriter, r *http.Request, o *Outputs, k int) {
	s.handleWindow(w, r, &o.trending, k)
}

func (s *Server) handlePopular(w http.ResponseWriter, r *http.Request, o *Outputs, k int) {
	s.handleWindow(w, r, &o.popular, k)
}

func (s *Server) handleWindow(w http.ResponseWriter, r *http.Request, sl *slot[windowTable], k int) {
	var at time.Time
	if v := r.URL.Query().Get("at"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "at="+strconv.Quote(v)+" is not an RFC 3339 time; give e.g. at=2024-05-01T12:00:00Z")
			return
		}
		at = t
	}
	wt := sl.cur.Load()
	if wt == nil {
		writeError(w, http.StatusServiceUnavailable, sl.unavailable())
		return
	}
	setVersion(w, wt.version)
	start, ok := wt.window(at)
	if !ok {
		msg := sl.uri + " version " + strconv.FormatInt(wt.version, 10) + " has no closed window"
		if !at.IsZero() {
			msg += " holding " + at.UTC().Format(time.RFC3339Nano)
			if len(wt.starts) > 0 {
				msg += "; its windows run from " + wt.starts[0].Format(time.RFC3339) + " to the latest closed one, starting " + wt.latest.Format(time.RFC3339)
			}
		}
		writeError(w, http.StatusNotFound, msg)
		return
	}
	rows := wt.rows[start.UnixMicro()]
	rows = rows[:min(k, len(rows))]
	items := make([]WindowItem, len(rows))
	for i, e := range rows {
		items[i] = WindowItem{ItemID: e.item, Count: e.count, Score: finite(e.score), Rank: e.rank}
	}
	writeJSON(w, http.StatusOK, WindowAnswer{WindowStart: start.UTC().Format(time.RFC3339Nano), Version: wt.version, Items: items})
}
