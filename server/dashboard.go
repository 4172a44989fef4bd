package server

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The dashboard: GET / is a page of plain HTML, vanilla JavaScript and CSS embedded in the
// binary (no build step, no CDN, no external URL), which reads the JSON APIs of this server:
//
//   - GET /: ui/index.html; GET /ui/NAME: its script, style sheet and icon. Every answer carries
//     a Content-Security-Policy that allows only 'self' (no inline script or style, no other
//     origin). The page is public; the data it shows is not: with Options.ReadToken set, the
//     page sends the token (from ?token=T, kept in the tab's sessionStorage, or typed in) as
//     `Authorization: Bearer T` on every API call.
//   - GET /v1/trending/series?item=ID[&windows=N]: the item's counts over the last N windows
//     (default 24, at most 168) of the trending table, oldest first, against the count the
//     trending model expected (see handleSeries).
//   - GET /v1/ingest/health: events per minute over the last hour, the quarantine rate and its
//     reasons, and the queue lag (see health.go).
//   - GET /v1/tables: every table this server reads, with its version and last commits (see
//     tables.go).
//   - GET /v1/ops: the scheduled jobs, from Options.Ops; 503 without it.
//   - GET /v1/dashboard: what the page shows, in one answer (see handleDashboard).
//
// Series, health, tables and ops take the read token like the other reads and answer
// {"error": "..."} on failure; 503 means the data is not there yet (or this server was not given
// it), which the page shows as a note in the panel. /v1/dashboard passes the request's token
// (and client address, for the rate limit) on to each endpoint it asks.
//
// The page reads everything through GET /v1/dashboard, which always answers 200 and carries
// each endpoint's own status and body: a browser logs every answer of 400 or more to the
// console as an error ("Failed to load resource"), even one the script expected and handled, so
// a page that fetched a 503 (outputs not built yet), a 401 (no token typed yet) or a 404 (an
// unknown item searched) would fill the console with errors that are not faults. It also makes
// a refresh one request instead of a score.

//go:embed ui
var uiFS embed.FS

// contentSecurityPolicy allows the page only its own origin: its script, its style sheet, its
// icon and its API calls. Nothing inline runs.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Series bounds of GET /v1/trending/series.
const (
	defaultSeriesWindows = 24
	maxSeriesWindows     = 168
)

// dashboard holds the state of the dashboard's endpoints: the embedded assets and the caches
// that keep the page from hammering the store.
type dashboard struct {
	s      *Server
	assets map[string]uiAsset // by path under ui/

	health healthState
	tables tablesCache
}

type uiAsset struct {
	body        []byte
	etag, ctype string
}

// dashboardRoutes registers the page, its assets and the endpoints it reads.
func (s *Server) dashboardRoutes() {
	d := &dashboard{s: s, assets: loadAssets()}
	s.mux.HandleFunc("GET /{$}", d.handleIndex)
	s.mux.HandleFunc("GET /ui/{name}", d.handleAsset)
	s.mux.HandleFunc("GET /v1/trending/series", s.limited(d.authed(d.handleSeries)))
	s.mux.HandleFunc("GET /v1/ingest/health", s.limited(d.authed(d.handleIngestHealth)))
	s.mux.HandleFunc("GET /v1/tables", s.limited(d.authed(d.handleTables)))
	s.mux.HandleFunc("GET /v1/ops", s.limited(d.authed(d.handleOps)))
	s.mux.HandleFunc("GET /v1/dashboard", d.handleDashboard)
}

func loadAssets() map[string]uiAsset {
	out := map[string]uiAsset{}
	err := fs.WalkDir(uiFS, "ui", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := uiFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // not left to the host's MIME tables
		case ".html":
			ctype = "text/html; charset=utf-8"
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		}
		out[path.Base(p)] = uiAsset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
		return nil
	})
	if err != nil {
		panic("server: the embedded dashboard: " + err.Error()) // a build defect
	}
	return out
}

func (d *dashboard) serveAsset(w http.ResponseWriter, r *http.Request, name, cache string) {
	a, ok := d.assets[name]
	if !ok {
		writeError(w, http.StatusNotFound, "no such dashboard asset: "+name)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // the page's URL may hold ?token=
	h.Set("Cache-Control", cache)
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}

func (d *dashboard) handleIndex(w http.ResponseWriter, r *http.Request) {
	d.serveAsset(w, r, "index.html", "no-store")
}

// handleAsset serves ui/NAME; a client revalidates it by its ETag (a hash of the content).
func (d *dashboard) handleAsset(w http.ResponseWriter, r *http.Request) {
	d.serveAsset(w, r, r.PathValue("name"), "no-cache")
}

// authed checks the read token, as the other read APIs do.
func (d *dashboard) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !d.s.readAuthorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lake"`)
			writeError(w, http.StatusUnauthorized, "the read APIs need 'Authorization: Bearer TOKEN' with the server's read token")
			return
		}
		h(w, r)
	}
}

// handleOps answers GET /v1/ops with what Options.Ops returns (the scheduled jobs).
func (d *dashboard) handleOps(w http.ResponseWriter, r *http.Request) {
	if d.s.opts.Ops == nil {
		writeError(w, http.StatusServiceUnavailable, "this server runs no scheduled jobs")
		return
	}
	v, err := d.s.opts.Ops(r.Context())
	if err != nil {
		d.s.opts.Logger.Warn("reading the scheduled jobs", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot read the scheduled jobs: "+err.Error())
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "the scheduled jobs do not encode as JSON: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
}

// SeriesPoint is one window of GET /v1/trending/series. Count is the item's count in the
// window from the trending table where the item was flagged there (Trending), else from the
// popular table, else null (the item was in neither: not surging and not among the window's
// most popular). Expected is the trending model's expectation, known only where the item was
// flagged.
type SeriesPoint struct {
	WindowStart string   `json:"window_start"`
	Count       *int64   `json:"count"`
	Expected    *float64 `json:"expected"`
	Trending    bool     `json:"trending"`
}

// SeriesAnswer is the body of GET /v1/trending/series.
type SeriesAnswer struct {
	ItemID         string        `json:"item_id"`
	Version        int64         `json:"version"`                   // of the trending table (popular's when trending is not loaded)
	PopularVersion *int64        `json:"popular_version,omitempty"` // of the popular table, when loaded
	WindowSeconds  int64         `json:"window_seconds"`
	Windows        []SeriesPoint `json:"windows"`
}

// handleSeries answers GET /v1/trending/series?item=ID&windows=N: the N windows ending with
// the latest closed one, oldest first.
func (d *dashboard) handleSeries(w http.ResponseWriter, r *http.Request) {
	o := d.s.opts.Reads
	if o == nil {
		writeError(w, http.StatusServiceUnavailable, "this server serves no job outputs: start it with `lake serve --outputs PREFIX`")
		return
	}
	q := r.URL.Query()
	item := q.Get("item")
	if item == "" {
		writeError(w, http.StatusBadRequest, "give the item: /v1/trending/series?item=ID[&windows=N]")
		return
	}
	n := defaultSeriesWindows
	if v := q.Get("windows"); q.Has("windows") {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			writeError(w, http.StatusBadRequest, "windows="+strconv.Quote(v)+" is not a positive integer; give e.g. windows=24 (at most "+strconv.Itoa(maxSeriesWindows)+")")
			return
		}
		n = min(k, maxSeriesWindows)
	}
	trend, pop := o.trending.cur.Load(), o.popular.cur.Load()
	grid := trend
	if grid == nil || grid.latest.IsZero() {
		grid = pop
	}
	if grid == nil {
		writeError(w, http.StatusServiceUnavailable, o.trending.unavailable())
		return
	}
	ans := SeriesAnswer{ItemID: item, Version: grid.version, WindowSeconds: int64(grid.length / time.Second), Windows: []SeriesPoint{}}
	if pop != nil {
		ans.PopularVersion = &pop.version
	}
	if !grid.latest.IsZero() {
		first := grid.latest.Add(-time.Duration(n-1) * grid.length)
		for i := range n {
			start := first.Add(time.Duration(i) * grid.length)
			ts := start.UnixMicro()
			p := SeriesPoint{WindowStart: start.UTC().Format(time.RFC3339Nano)}
			if row, ok := findRow(trend, ts, item); ok {
				c := row.count
				p.Count, p.Trending = &c, true
				if e := row.expected; !math.IsNaN(e) {
					e = finite(e)
					p.Expected = &e
				}
			} else if row, ok := findRow(pop, ts, item); ok {
				c := row.count
				p.Count = &c
			}
			ans.Windows = append(ans.Windows, p)
		}
	}
	setVersion(w, ans.Version)
	writeJSON(w, http.StatusOK, ans)
}

func findRow(wt *windowTable, ts int64, item string) (windowRow, bool) {
	if wt == nil {
		return windowRow{}, false
	}
	for _, r := range wt.rows[ts] {
		if r.item == item {
			return r, true
		}
	}
	return windowRow{}, false
}

// errNoEvents is the 503 of the endpoints that need the events table when the server was not
// told of one.
var errNoEvents = errors.New("this server knows no events table: start it with `lake serve --table URI` (or set Options.EventsTable)")

// eventsURI is the events table: Options.EventsTable, else the one of Options.Reads.
func (s *Server) eventsURI() string {
	if s.opts.EventsTable != "" {
		return s.opts.EventsTable
	}
	if s.opts.Reads != nil {
		return s.opts.Reads.opts.Events
	}
	return ""
}

// quarantineURI is the events table's quarantine table: Options.QuarantineTable, else the
// sibling table EVENTS_quarantine.
func (s *Server) quarantineURI() (string, error) {
	if s.opts.QuarantineTable != "" {
		return s.opts.QuarantineTable, nil
	}
	ev := s.eventsURI()
	if ev == "" {
		return "", errNoEvents
	}
	q, err := quarantineOf(ev)
	if err != nil {
		return "", fmt.Errorf("the quarantine table of %s: %w", ev, err)
	}
	return q, nil
}

// DashboardPart is one endpoint's answer inside GET /v1/dashboard: its status and its JSON body
// ({"error": "..."} when the status is not 2xx).
type DashboardPart struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// DashboardAnswer is the body of GET /v1/dashboard.
type DashboardAnswer struct {
	GeneratedAt string                    `json:"generated_at"`
	Parts       map[string]*DashboardPart `json:"parts"`
	// Series holds GET /v1/trending/series of each item of the trending part, by item.
	Series map[string]*DashboardPart `json:"series,omitempty"`
}

// dashboardParts are the parts of GET /v1/dashboard and the requests that answer them;
// defaultParts are those given when the request names none.
var (
	dashboardParts = map[string]func(q url.Values) (string, bool){
		"trending": func(q url.Values) (string, bool) { return "/v1/trending?k=" + url.QueryEscape(q.Get("k")), true },
		"popular":  func(q url.Values) (string, bool) { return "/v1/popular?k=" + url.QueryEscape(q.Get("k")), true },
		"health":   func(url.Values) (string, bool) { return "/v1/ingest/health", true },
		"models":   func(url.Values) (string, bool) { return "/v1/models", true },
		"ops":      func(url.Values) (string, bool) { return "/v1/ops", true },
		"tables":   func(url.Values) (string, bool) { return "/v1/tables", true },
		"similar": func(q url.Values) (string, bool) {
			return "/v1/items/" + url.PathEscape(q.Get("item")) + "/similar?k=" + url.QueryEscape(q.Get("k")), q.Get("item") != ""
		},
		"recs": func(q url.Values) (string, bool) {
			return "/v1/users/" + url.PathEscape(q.Get("user")) + "/recommendations?k=" + url.QueryEscape(q.Get("k")), q.Get("user") != ""
		},
	}
	defaultParts = []string{"trending", "popular", "health", "models", "ops", "tables"}
)

// handleDashboard answers GET /v1/dashboard[?parts=a,b][&item=ID][&user=ID][&k=N][&windows=N]:
// 200 {"generated_at", "parts": {NAME: {"status", "body"}}, "series": {ITEM: {"status",
// "body"}}}, each part the answer of its endpoint to the same request (the same token, the same
// client address for the rate limit): trending (GET /v1/trending?k=N), popular, health (GET
// /v1/ingest/health), models, ops, tables, similar (GET /v1/items/ITEM/similar?k=N) and recs
// (GET /v1/users/USER/recommendations?k=N), and the series (GET /v1/trending/series?item=ID&
// windows=N) of every trending item. Without parts: all but similar and recs, plus similar
// with item and recs with user. k defaults to 10, windows to 24. An unknown part is 400.
func (d *dashboard) handleDashboard(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("k") {
		q.Set("k", "10")
	}
	if !q.Has("windows") {
		q.Set("windows", strconv.Itoa(defaultSeriesWindows))
	}
	var names []string
	if v := q.Get("parts"); v != "" {
		for _, p := range strings.Split(v, ",") {
			if _, ok := dashboardParts[p]; !ok {
				writeError(w, http.StatusBadRequest, "unknown part "+strconv.Quote(p)+"; the parts are trending, popular, health, models, ops, tables, similar (with item=ID) and recs (with user=ID)")
				return
			}
			if !slices.Contains(names, p) {
				names = append(names, p)
			}
		}
	} else {
		names = slices.Clone(defaultParts)
		if q.Get("item") != "" {
			names = append(names, "similar")
		}
		if q.Get("user") != "" {
			names = append(names, "recs")
		}
	}
	ans := DashboardAnswer{GeneratedAt: d.s.opts.Now().UTC().Format(time.RFC3339Nano), Parts: map[string]*DashboardPart{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			target, ok := dashboardParts[name](q)
			var p *DashboardPart
			if ok {
				p = d.dispatch(r, target)
			} else {
				p = &DashboardPart{Status: http.StatusBadRequest, Body: dashErrorJSON("the " + name + " part needs " + map[string]string{"similar": "item=ID", "recs": "user=ID"}[name])}
			}
			var series map[string]*DashboardPart
			if name == "trending" && p.Status == http.StatusOK {
				series = d.series(r, p.Body, q.Get("windows"))
			}
			mu.Lock()
			defer mu.Unlock()
			ans.Parts[name] = p
			if series != nil {
				ans.Series = series
			}
		})
	}
	wg.Wait()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ans)
}

// series fetches the series of every item of a trending answer.
func (d *dashboard) series(r *http.Request, trending json.RawMessage, windows string) map[string]*DashboardPart {
	var a WindowAnswer
	if json.Unmarshal(trending, &a) != nil {
		return nil
	}
	out := make(map[string]*DashboardPart, len(a.Items))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, it := range a.Items {
		wg.Go(func() {
			p := d.dispatch(r, "/v1/trending/series?item="+url.QueryEscape(it.ItemID)+"&windows="+url.QueryEscape(windows))
			mu.Lock()
			out[it.ItemID] = p
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// dispatch answers target through this server's own routes, as if r's client had asked for it
// (its token, its address), and records the answer.
func (d *dashboard) dispatch(r *http.Request, target string) *DashboardPart {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
	if err != nil {
		return &DashboardPart{Status: http.StatusInternalServerError, Body: dashErrorJSON(err.Error())}
	}
	req.RemoteAddr = r.RemoteAddr
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	rec := &partRecorder{h: http.Header{}}
	d.s.mux.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	body := bytes.TrimSpace(rec.body.Bytes())
	if !json.Valid(body) {
		body = dashErrorJSON(fmt.Sprintf("%s answered %d without a JSON body", target, rec.status))
	}
	return &DashboardPart{Status: rec.status, Body: body}
}

func dashErrorJSON(msg string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return b
}

// partRecorder is the http.ResponseWriter of a dispatched request.
type partRecorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (p *partRecorder) Header() http.Header { return p.h }

func (p *partRecorder) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

func (p *partRecorder) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return p.body.Write(b)
}
