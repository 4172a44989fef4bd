package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
	"github.com/lakehouse/lake/registry"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer"
	"github.com/lakehouse/lake/writer/source"
)

func TestDashboardPage(t *testing.T) {
	h := newHarness(t, nil)
	w := h.do(t, "GET", "/", "", nil)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
		t.Errorf("CSP %q allows more than 'self'", csp)
	}
	page := w.Body.String()
	if !strings.Contains(page, `id="similar-form"`) || strings.Contains(page, "<script>") || strings.Contains(page, "style=") {
		t.Errorf("the page has no search form, or inline script or style:\n%s", page)
	}

	// Every asset the page references is served, with its type and the CSP; none is external.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("the page references %d assets, want the script, the style sheet and the icon", len(refs))
	}
	types := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	bodies := map[string]string{}
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "/ui/") {
			t.Errorf("asset %q is not served by this server's /ui/", ref)
			continue
		}
		w := h.do(t, "GET", ref, "", nil)
		if w.Code != 200 || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d (%d bytes)", ref, w.Code, w.Body.Len())
			continue
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, types[filepath.Ext(ref)]) {
			t.Errorf("GET %s: Content-Type %q", ref, ct)
		}
		if w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", ref, w.Header())
		}
		// A client revalidates by ETag.
		if w2 := h.do(t, "GET", ref, "", map[string]string{"If-None-Match": w.Header().Get("ETag")}); w2.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", ref, w2.Code)
		}
		bodies[ref] = w.Body.String()
	}
	// No URL of another origin anywhere (the SVG namespace is a name, not a fetch).
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for name, body := range map[string]string{"/": page, "app.js": bodies["/ui/app.js"], "style.css": bodies["/ui/style.css"]} {
		for _, m := range external.FindAllString(body, -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s names an external URL %q", name, m)
			}
		}
	}
	// Every element the script looks up exists in the page.
	for _, m := range regexp.MustCompile(`\$\("([a-z-]+)"\)`).FindAllStringSubmatch(bodies["/ui/app.js"], -1) {
		if !strings.Contains(page, `id="`+m[1]+`"`) {
			t.Errorf("app.js looks up #%s, which the page does not have", m[1])
		}
	}
	for _, target := range []string{"/ui/nope.js", "/nope"} {
		if w := h.do(t, "GET", target, "", nil); w.Code != 404 {
			t.Errorf("GET %s: %d, want 404", target, w.Code)
		}
	}
	// The page is public even with a read token; its data is not.
	h = newHarness(t, &Options{ReadToken: "sesame"})
	if w := h.do(t, "GET", "/", "", nil); w.Code != 200 {
		t.Errorf("GET / with a read token set: %d", w.Code)
	}
	for _, target := range []string{"/v1/trending/series?item=i1", "/v1/ingest/health", "/v1/tables", "/v1/ops"} {
		if w := h.do(t, "GET", target, "", nil); w.Code != 401 {
			t.Errorf("GET %s without the token: %d, want 401", target, w.Code)
		}
	}
}

func TestDashboardSeries(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, &Options{Reads: f.outputs(t, nil)})
	type point struct {
		start    time.Duration // after t0
		count    any
		expected any
		trending bool
	}
	check := func(target string, want []point) {
		t.Helper()
		a, w := get[SeriesAnswer](t, h, target, 200, nil)
		checkVersion(t, w, a.Version)
		if a.WindowSeconds != 3600 || a.PopularVersion == nil || *a.PopularVersion != 1 {
			t.Errorf("%s: window %d s, popular version %v", target, a.WindowSeconds, a.PopularVersion)
		}
		var got []point
		for _, p := range a.Windows {
			ts, err := time.Parse(time.RFC3339Nano, p.WindowStart)
			if err != nil {
				t.Fatal(err)
			}
			q := point{start: ts.Sub(t0), trending: p.Trending}
			if p.Count != nil {
				q.count = *p.Count
			}
			if p.Expected != nil {
				q.expected = *p.Expected
			}
			got = append(got, q)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %v\nwant %v", target, got, want)
		}
	}
	// i9 surged in the first window; i2 was only popular; the latest window is t0+3h.
	check("/v1/trending/series?item=i9&windows=4", []point{
		{0, int64(30), 3.0, true}, {time.Hour, nil, nil, false}, {2 * time.Hour, nil, nil, false}, {3 * time.Hour, nil, nil, false},
	})
	check("/v1/trending/series?item=i2&windows=5", []point{
		{-time.Hour, nil, nil, false}, {0, int64(90), nil, false}, {time.Hour, int64(95), nil, false}, {2 * time.Hour, nil, nil, false}, {3 * time.Hour, nil, nil, false},
	})
	check("/v1/trending/series?item=i7&windows=1", []point{{3 * time.Hour, int64(40), 5.0, true}})
	a, _ := get[SeriesAnswer](t, h, "/v1/trending/series?item=i1", 200, nil)
	if len(a.Windows) != defaultSeriesWindows {
		t.Errorf("default windows: %d", len(a.Windows))
	}
	a, _ = get[SeriesAnswer](t, h, "/v1/trending/series?item=i1&windows=100000", 200, nil)
	if len(a.Windows) != maxSeriesWindows {
		t.Errorf("capped windows: %d", len(a.Windows))
	}
	for _, q := range []string{"", "?item=", "?item=i1&windows=0", "?item=i1&windows=x"} {
		get[errBody](t, h, "/v1/trending/series"+q, 400, nil)
	}
	// A new trending version is seen with its expectations.
	writeRows(t, jobs.ChildURI(f.prefix, OutTrend), windowSchema(true), [][]any{{t0.Add(3 * time.Hour), "i9", int64(50), 7.5, 20.0, 1}})
	if err := h.srv.opts.Reads.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	a, _ = get[SeriesAnswer](t, h, "/v1/trending/series?item=i9&windows=1", 200, nil)
	if a.Version != 2 || len(a.Windows) != 1 || a.Windows[0].Expected == nil || *a.Windows[0].Expected != 7.5 {
		t.Errorf("after a new version: %+v", a)
	}

	// Without outputs, or before the jobs ran: 503.
	get[errBody](t, newHarness(t, nil), "/v1/trending/series?item=i1", 503, nil)
	out, err := NewOutputs(filepath.Join(t.TempDir(), "out"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e, _ := get[errBody](t, newHarness(t, &Options{Reads: out}), "/v1/trending/series?item=i1", 503, nil); !strings.Contains(e.Error, "lake trending") {
		t.Errorf("503 %q does not name the job", e.Error)
	}
}

// jobOutputs runs the real jobs on a small generated data set: an events table, ALS and
// trending outputs registered in the model registry, and a quarantine table.
type jobOutputs struct {
	events, quarantine, prefix string
	rows                       int64
}

func buildJobOutputs(t *testing.T) *jobOutputs {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	j := &jobOutputs{events: filepath.Join(dir, "events"), prefix: filepath.Join(dir, "out")}
	j.quarantine = j.events + "_quarantine"
	d, err := jobs.Generate(&jobs.GenOptions{Users: 150, Items: 60, Days: 3, Interactions: 3000, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.WriteDataset(ctx, j.events, d); err != nil {
		t.Fatal(err)
	}
	res, err := jobs.RunALS(ctx, &jobs.ALSJobOptions{Source: j.events, SourceVersion: -1, Output: j.prefix, Top: 5,
		ALS: jobs.ALSOptions{Factors: 8, Iterations: 3}})
	if err != nil {
		t.Fatal(err)
	}
	j.rows = res.SourceRows
	if _, err := registry.RegisterALS(ctx, j.prefix, res, nil); err != nil {
		t.Fatal(err)
	}
	tr, err := trending.Run(ctx, &trending.Options{Source: j.events, SourceVersion: -1, Output: j.prefix, Params: trending.Params{Window: 2 * time.Hour, Threshold: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Flagged == 0 {
		t.Fatalf("the trending job flagged nothing: %+v", tr)
	}
	if _, err := registry.RegisterTrending(ctx, j.prefix, tr.SourceVersion, tr.Outputs, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	q := func(reason string) []any {
		return []any{`{"bad": true}`, "collector", nil, nil, nil, reason, nil, now, now}
	}
	writeRows(t, j.quarantine, source.QuarantineSchema(), [][]any{q("bad timestamp"), q("bad timestamp"), q("bad timestamp"), q("unknown interaction_type")})
	return j
}

func (j *jobOutputs) server(t *testing.T, opts *Options) *harness {
	t.Helper()
	out, err := NewOutputs(j.prefix, &OutputsOptions{Events: j.events, Pick: registry.NewPicker(j.prefix).Pick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	if err := out.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Reads = out
	o.Models = func(ctx context.Context) (any, error) { return registry.NewReport(ctx, j.prefix) }
	return newHarness(t, &o)
}

func TestDashboardOnJobOutputs(t *testing.T) {
	j := buildJobOutputs(t)
	var clock atomic.Int64 // an offset from the real time (commit timestamps are real)
	lag := 1500 * time.Millisecond
	h := j.server(t, &Options{
		Now:      func() time.Time { return time.Now().Add(time.Duration(clock.Load())) },
		QueueLag: func() (time.Duration, bool) { return lag, true },
	})

	t.Run("series", func(t *testing.T) {
		wt := h.srv.opts.Reads.trending.cur.Load()
		if wt == nil || len(wt.starts) == 0 {
			t.Fatal("the trending job flagged nothing")
		}
		first := wt.starts[len(wt.starts)-1]
		item := wt.rows[first.UnixMicro()][0].item
		a, w := get[SeriesAnswer](t, h, "/v1/trending/series?item="+item+"&windows=48", 200, nil)
		checkVersion(t, w, a.Version)
		if a.ItemID != item || a.WindowSeconds != 7200 || len(a.Windows) != 48 || a.Windows[47].WindowStart != wt.latest.Format(time.RFC3339) {
			t.Fatalf("series of %s: %+v (latest window %v)", item, a, wt.latest)
		}
		flagged := 0
		for _, p := range a.Windows {
			if p.Trending {
				flagged++
				if p.Count == nil || p.Expected == nil || float64(*p.Count) <= *p.Expected {
					t.Errorf("a trending window of %s: count %v, expected %v", item, p.Count, p.Expected)
				}
			}
		}
		if flagged == 0 {
			t.Errorf("no trending window for %s in %+v", item, a.Windows)
		}
	})

	t.Run("ingest health", func(t *testing.T) {
		a, _ := get[IngestHealth](t, h, "/v1/ingest/health", 200, nil)
		if a.Table != j.events || a.QuarantineTable != j.quarantine || a.Version == nil || a.QuarantineVersion == nil || len(a.Errors) > 0 {
			t.Fatalf("health: %+v", a)
		}
		if a.Events != j.rows || a.Quarantined != 4 || a.Commits != 1 || a.Partial {
			t.Errorf("events %d (want %d), quarantined %d (want 4), commits %d, partial %v", a.Events, j.rows, a.Quarantined, a.Commits, a.Partial)
		}
		if want := 4 / float64(j.rows+4); a.QuarantineRate != want || a.EventsPerMinute != float64(j.rows)/60 {
			t.Errorf("rate %v (want %v), per minute %v", a.QuarantineRate, want, a.EventsPerMinute)
		}
		var sum, sumQ int64
		for _, m := range a.Minutes {
			sum += m.Events
			sumQ += m.Quarantined
		}
		if len(a.Minutes) != 60 || sum != a.Events || sumQ != 4 || a.Minutes[59].Events+a.Minutes[58].Events != a.Events {
			t.Errorf("minutes: %d of them, %d events and %d quarantined in them", len(a.Minutes), sum, sumQ)
		}
		want := []ReasonCount{{"bad timestamp", 3}, {"unknown interaction_type", 1}}
		if !slices.Equal(a.Reasons, want) || a.ReasonFiles != 1 {
			t.Errorf("reasons %v from %d files, want %v", a.Reasons, a.ReasonFiles, want)
		}
		if a.QueueLag == nil || *a.QueueLag != 1.5 {
			t.Errorf("queue lag %v", a.QueueLag)
		}
		// Cached for a few seconds, then read again: only the new commit.
		now := time.Now().UTC()
		writeRowsMode(t, j.quarantine, source.QuarantineSchema(), [][]any{{"x", "collector", nil, nil, nil, "bad timestamp", nil, now, now}}, writer.Append)
		if a, _ := get[IngestHealth](t, h, "/v1/ingest/health", 200, nil); a.Quarantined != 4 {
			t.Errorf("within the cache's life: %d quarantined", a.Quarantined)
		}
		clock.Store(int64(healthTTL))
		a, _ = get[IngestHealth](t, h, "/v1/ingest/health", 200, nil)
		if a.Quarantined != 5 || a.Reasons[0] != (ReasonCount{"bad timestamp", 4}) || a.ReasonFiles != 2 {
			t.Errorf("after the cache: %d quarantined, reasons %v", a.Quarantined, a.Reasons)
		}
		// An hour later, the commits are out of the window.
		clock.Store(int64(healthWindow + 2*time.Minute))
		a, _ = get[IngestHealth](t, h, "/v1/ingest/health", 200, nil)
		if a.Events != 0 || a.Quarantined != 0 || a.QuarantineRate != 0 || len(a.Reasons) != 0 {
			t.Errorf("an hour later: %+v", a)
		}
		clock.Store(0)
	})

	t.Run("tables", func(t *testing.T) {
		a, _ := get[TablesAnswer](t, h, "/v1/tables", 200, nil)
		var names []string
		for _, ti := range a.Tables {
			names = append(names, ti.Name)
			if ti.Version == nil || len(ti.History) == 0 || len(ti.History) > tablesHistory || ti.History[0].Version != *ti.Version {
				t.Errorf("%s: version %v, %d commits", ti.Name, ti.Version, len(ti.History))
				continue
			}
			for i := 1; i < len(ti.History); i++ {
				if ti.History[i].Version >= ti.History[i-1].Version {
					t.Errorf("%s: history not newest first: %+v", ti.Name, ti.History)
				}
			}
			last := ti.History[len(ti.History)-1]
			if _, err := time.Parse(time.RFC3339Nano, last.Timestamp); err != nil || last.Operation == "" {
				t.Errorf("%s: commit %+v", ti.Name, last)
			}
		}
		want := []string{"events", "quarantine", OutSimilar, OutRecs, OutTrend, OutPopular, registry.TableName}
		if !slices.Equal(names, want) {
			t.Fatalf("tables %v, want %v", names, want)
		}
		ev := a.Tables[0]
		if c := ev.History[0]; c.Operation != "WRITE" || c.Rows == nil || *c.Rows != j.rows || !strings.Contains(c.Summary, fmt.Sprintf("%d rows", j.rows)) {
			t.Errorf("the events table's write: %+v", c)
		}
		if sim := a.Tables[2]; sim.ServedVersion == nil || *sim.ServedVersion != *sim.Version || sim.URI != jobs.ChildURI(j.prefix, OutSimilar) {
			t.Errorf("similar_items: %+v", sim)
		}
	})

	t.Run("models", func(t *testing.T) {
		a, _ := get[map[string]any](t, h, "/v1/models", 200, nil)
		runs, _ := a["runs"].([]any)
		if len(runs) != 2 {
			t.Fatalf("runs: %v", a)
		}
	})
}

func TestDashboardWithoutData(t *testing.T) {
	h := newHarness(t, nil)
	for _, target := range []string{"/v1/ingest/health", "/v1/tables", "/v1/ops", "/v1/trending/series?item=i1"} {
		if e, _ := get[errBody](t, h, target, 503, nil); e.Error == "" {
			t.Errorf("%s: no message", target)
		}
	}
	// An events table that does not exist yet: no version, no counts.
	dir := t.TempDir()
	h = newHarness(t, &Options{EventsTable: filepath.Join(dir, "events")})
	a, _ := get[IngestHealth](t, h, "/v1/ingest/health", 200, nil)
	if a.Version != nil || a.QuarantineVersion != nil || a.Events != 0 || a.QuarantineTable != filepath.Join(dir, "events_quarantine") || a.QueueLag != nil {
		t.Errorf("before the first commit: %+v", a)
	}
	ta, _ := get[TablesAnswer](t, h, "/v1/tables", 200, nil)
	if len(ta.Tables) != 2 || ta.Tables[0].Version != nil || ta.Tables[0].Status != "not a table yet" || ta.Tables[0].History == nil {
		t.Errorf("tables before the first commit: %+v", ta)
	}
}

func TestDashboardOps(t *testing.T) {
	ops := func(context.Context) (any, error) {
		return map[string]any{"tasks": []map[string]any{{"name": "als", "next_run": "2024-05-06T10:00:00Z"}}}, nil
	}
	a, _ := get[map[string][]map[string]any](t, newHarness(t, &Options{Ops: ops}), "/v1/ops", 200, nil)
	if len(a["tasks"]) != 1 || a["tasks"][0]["name"] != "als" {
		t.Errorf("ops: %v", a)
	}
	failing := func(context.Context) (any, error) { return nil, errors.New("boom") }
	if e, _ := get[errBody](t, newHarness(t, &Options{Ops: failing}), "/v1/ops", 500, nil); !strings.Contains(e.Error, "boom") {
		t.Errorf("a failing scheduler: %q", e.Error)
	}
}

// The health reading goes back through many commits in batches, then reads only new ones.
func TestIngestHealthManyCommits(t *testing.T) {
	uri := "mem://dash-health-" + strconv.FormatInt(time.Now().UnixNano(), 36) // fresh per run (-count)
	n := healthBatch + 5
	ts := time.Now().UTC()
	for i := range n {
		writeRowsMode(t, uri, table.InteractionSchema(), [][]any{{fmt.Sprint("e", i), "u", "i", "view", ts, ts, nil, nil, nil}}, writer.Append)
	}
	var w commitWatch
	cutoff := time.Now().Add(-time.Hour).UnixMilli()
	ctx := context.Background()
	if ok, err := w.refresh(ctx, uri, cutoff); err != nil || !ok {
		t.Fatal(ok, err)
	}
	rows := func() (c, r int64) {
		for _, cr := range w.commits {
			if cr.data {
				c++
				r += cr.rows
			}
		}
		return
	}
	if c, r := rows(); c != int64(n) || r != int64(n) || w.latest != int64(n) || w.partial {
		t.Fatalf("%d data commits and %d rows, latest %d, partial %v; want %d, %d, %d", c, r, w.latest, w.partial, n, n, n)
	}
	for i := range 3 {
		writeRowsMode(t, uri, table.InteractionSchema(), [][]any{{fmt.Sprint("f", i), "u", "i", "view", ts, ts, nil, nil, nil}}, writer.Append)
	}
	if _, err := w.refresh(ctx, uri, cutoff); err != nil {
		t.Fatal(err)
	}
	if c, _ := rows(); c != int64(n+3) || w.latest != int64(n+3) {
		t.Errorf("after 3 more commits: %d, latest %d", c, w.latest)
	}
	// Commits before the cutoff are forgotten.
	if _, err := w.refresh(ctx, uri, time.Now().Add(time.Minute).UnixMilli()); err != nil || len(w.commits) != 0 {
		t.Errorf("after the cutoff: %d commits remembered, %v", len(w.commits), err)
	}
	for _, from := range []int64{0, 5, int64(n)} {
		if v, err := newestCommit(ctx, w.t.Bucket(), from); err != nil || v != int64(n+3) {
			t.Errorf("newestCommit from %d: %d, %v", from, v, err)
		}
	}
}

// GET /v1/dashboard carries every endpoint's own answer in one 200.
func TestDashboardAggregate(t *testing.T) {
	f := newFixture(t)
	out := f.outputs(t, nil)
	h := newHarness(t, &Options{Reads: out, ReadToken: "sesame", Ops: func(context.Context) (any, error) { return map[string]any{"tasks": []any{}}, nil }})
	auth := map[string]string{"Authorization": "Bearer sesame"}
	a, _ := get[DashboardAnswer](t, h, "/v1/dashboard", 200, auth)
	status := func(a DashboardAnswer) map[string]int {
		m := map[string]int{}
		for k, p := range a.Parts {
			m[k] = p.Status
		}
		return m
	}
	// No models hook: 503 inside; no events table... the fixture's outputs know it.
	want := map[string]int{"trending": 200, "popular": 200, "health": 200, "models": 503, "ops": 200, "tables": 200}
	if fmt.Sprint(status(a)) != fmt.Sprint(want) {
		t.Errorf("parts %v, want %v", status(a), want)
	}
	var tr WindowAnswer
	if err := json.Unmarshal(a.Parts["trending"].Body, &tr); err != nil || len(tr.Items) != 1 || tr.Items[0].ItemID != "i7" {
		t.Fatalf("trending part: %s (%v)", a.Parts["trending"].Body, err)
	}
	var s SeriesAnswer
	if p := a.Series["i7"]; p == nil || p.Status != 200 || json.Unmarshal(p.Body, &s) != nil || len(s.Windows) != defaultSeriesWindows || len(a.Series) != 1 {
		t.Errorf("series: %v", a.Series)
	}
	var e errBody
	if err := json.Unmarshal(a.Parts["models"].Body, &e); err != nil || e.Error == "" {
		t.Errorf("models part: %s", a.Parts["models"].Body)
	}

	// Searches, with k and windows passed on; an unknown item is a 404 inside a 200.
	a, _ = get[DashboardAnswer](t, h, "/v1/dashboard?parts=similar,recs&item=i1&user=u1&k=1", 200, auth)
	var sim SimilarAnswer
	var recs RecsAnswer
	if json.Unmarshal(a.Parts["similar"].Body, &sim) != nil || len(sim.Items) != 1 || sim.Items[0].ItemID != "i2" ||
		json.Unmarshal(a.Parts["recs"].Body, &recs) != nil || recs.Source != SourceModel || len(a.Parts) != 2 || a.Series != nil {
		t.Errorf("searches: %+v", a)
	}
	a, _ = get[DashboardAnswer](t, h, "/v1/dashboard?parts=similar,trending&item=nope&windows=2", 200, auth)
	if a.Parts["similar"].Status != 404 || len(a.Series) != 1 {
		t.Errorf("an unknown item: %+v", a)
	} else if json.Unmarshal(a.Series["i7"].Body, &s) != nil || len(s.Windows) != 2 {
		t.Errorf("windows=2: %s", a.Series["i7"].Body)
	}
	a, _ = get[DashboardAnswer](t, h, "/v1/dashboard?item=i1", 200, auth)
	if _, ok := a.Parts["similar"]; !ok || len(a.Parts) != 7 {
		t.Errorf("default parts with an item: %v", status(a))
	}
	if a, _ := get[DashboardAnswer](t, h, "/v1/dashboard?parts=similar", 200, auth); a.Parts["similar"].Status != 400 {
		t.Errorf("similar without an item: %v", status(a))
	}
	get[errBody](t, h, "/v1/dashboard?parts=bogus", 400, auth)

	// Without the token every part is a 401, inside a 200.
	a, _ = get[DashboardAnswer](t, h, "/v1/dashboard", 200, nil)
	for k, p := range a.Parts {
		if p.Status != 401 {
			t.Errorf("%s without the token: %d", k, p.Status)
		}
	}
}
