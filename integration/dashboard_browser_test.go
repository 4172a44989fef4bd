package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"gocloud.dev/pubsub/mempubsub"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
	"github.com/lakehouse/lake/registry"
	"github.com/lakehouse/lake/server"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer/source"
)

// The dashboard in a real browser: the server runs in-process on loopback over tables the real
// jobs built (a generated data set, a surge and two bad records ingested on top, ALS and
// trending outputs registered in the model registry); headless Chromium opens /, every panel
// renders rows, a search shows similar items, a user gets recommendations, the page writes
// nothing to the console, and a full-page screenshot is saved. A server with no outputs shows
// notes in the panels instead (503s), and one with a read token takes it from ?token= or asks
// for it, again without console errors.
func TestDashboardBrowser(t *testing.T) {
	chromium := requireChromium(t)
	events, prefix := buildDashboardTables(t)

	out, err := server.NewOutputs(prefix, &server.OutputsOptions{Events: events, Pick: registry.NewPicker(prefix).Pick})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	started := time.Now().UTC()
	topic := mempubsub.NewTopic()
	defer topic.Shutdown(context.Background())
	srv, err := server.New(topic, &server.Options{
		Reads:    out,
		Models:   func(ctx context.Context) (any, error) { return registry.NewReport(ctx, prefix) },
		QueueLag: func() (time.Duration, bool) { return 800 * time.Millisecond, true },
		Ops: func(context.Context) (any, error) { // the shape of the scheduler's report
			next := started.Add(6 * time.Hour)
			return map[string]any{"now": started, "tasks": []map[string]any{
				{"name": "als", "schedule": "every 6h", "runs": 1, "last_end": started, "next_run": next,
					"last_result": map[string]any{"summary": "trained on 3,000 events", "run_status": "live"}},
				{"name": "optimize", "schedule": "every 1h", "runs": 0, "next_run": started.Add(time.Hour)},
			}}, nil
		},
		RateLimit: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv) // 127.0.0.1
	defer hs.Close()
	var pop server.WindowAnswer
	getJSON(t, hs.URL+"/v1/popular?k=1", &pop)
	if len(pop.Items) == 0 {
		t.Fatalf("no popular item to search for: %+v", pop)
	}
	item := pop.Items[0].ItemID

	ctx, console := openBrowser(t, chromium)
	count := func(sel string) int { return evalInt(t, ctx, fmt.Sprintf("document.querySelectorAll(%q).length", sel)) }

	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitReady(`body[data-loaded="true"]`),
		// Each trending row gets its sparkline from /v1/trending/series.
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#trending-table tbody tr").length > 0 &&
			document.querySelectorAll("#trending-table svg.spark").length === document.querySelectorAll("#trending-table tbody tr").length`),
	); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("browser: open the dashboard: %v (console: %v)\n%s", err, console.all(), text)
	}
	for sel, least := range map[string]int{
		"#trending-table tbody tr":      1,
		"#trending-table svg.spark":     1,
		"#popular-table tbody tr":       1,
		"#models-table tbody tr":        2, // the ALS and the trending run
		"#ops-table tbody tr":           2,
		"#reasons-table tbody tr":       1,
		"#health-chart svg rect":        1,
		"#tables-list .table-card":      7, // events, quarantine, 4 outputs, models
		"#tables-list table.history tr": 8,
	} {
		if n := count(sel); n < least {
			t.Errorf("%s: %d elements, want at least %d", sel, n, least)
		}
	}
	if n := count(`#models-table .badge.live`); n != 2 {
		t.Errorf("%d live runs shown, want 2", n)
	}
	// The panels that answered hide their notes; the page runs without a token.
	if n := count(`#panel-trending .note:not([hidden]), #panel-models .note:not([hidden]), #panel-tables .note:not([hidden])`); n != 0 {
		t.Errorf("%d panels show a note on a server with every output", n)
	}

	// A search shows the similar items; a user gets recommendations.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys("#similar-item", item),
		chromedp.Click(`#similar-form button[type="submit"]`),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#similar-list li").length > 0`, chromedp.WithPollingTimeout(15*time.Second)),
		chromedp.SendKeys("#recs-user", jobs.UserID(1)),
		chromedp.Click(`#recs-form button[type="submit"]`),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#recs-list li").length > 0`, chromedp.WithPollingTimeout(15*time.Second)),
	); err != nil {
		t.Fatalf("browser: search: %v (console: %v)", err, console.all())
	}
	similar, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#similar-list li button.item")).map(b => b.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	var api server.SimilarAnswer
	getJSON(t, hs.URL+"/v1/items/"+item+"/similar?k=10", &api)
	var want []string
	for _, it := range api.Items {
		want = append(want, it.ItemID)
	}
	if strings.Join(similar, ",") != strings.Join(want, ",") {
		t.Errorf("the page lists %v as similar to %s, the API %v", similar, item, want)
	}
	// Clicking an item of a list searches for it.
	if err := chromedp.Do(ctx,
		chromedp.Click(`#trending-table tbody tr:first-child button.item`),
		chromedp.Poll[chromedp.Void](`document.getElementById("similar-item").value ===
			document.querySelector("#trending-table tbody tr:first-child button.item").textContent`),
	); err != nil {
		t.Errorf("browser: click a trending item: %v", err)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot: %v", err)
	}
	saveScreenshot(t, "dashboard.png", shot)
	if msgs := console.errors(); len(msgs) > 0 {
		t.Errorf("the dashboard wrote to the console:\n%s", strings.Join(msgs, "\n"))
	}

	// A server with nothing built yet: every panel says so, and the console stays clean.
	bare, err := server.New(topic, &server.Options{RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	hb := httptest.NewServer(bare)
	defer hb.Close()
	ctx2, console2 := openBrowser(t, chromium)
	if err := chromedp.Do(ctx2,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(hb.URL+"/"),
		chromedp.WaitReady(`body[data-loaded="true"]`),
	); err != nil {
		t.Fatalf("browser: open the bare dashboard: %v", err)
	}
	notes, err := chromedp.Run(ctx2, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(".panel .note:not([hidden])")).map(n => n.closest(".panel").id + ": " + n.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"panel-trending", "panel-popular", "panel-health", "panel-models", "panel-tables"} {
		found := false
		for _, n := range notes {
			found = found || strings.HasPrefix(n, p+": Not available yet")
		}
		if !found {
			t.Errorf("%s shows no 503 note; notes: %q", p, notes)
		}
	}
	if hidden := evalInt(t, ctx2, `document.getElementById("panel-ops").hidden ? 1 : 0`); hidden != 1 {
		t.Errorf("the scheduled jobs panel shows on a server without a scheduler")
	}
	shot, err = chromedp.Run(ctx2, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("browser: screenshot: %v", err)
	}
	saveScreenshot(t, "dashboard-empty.png", shot)
	if msgs := console2.errors(); len(msgs) > 0 {
		t.Errorf("the dashboard without outputs wrote to the console:\n%s", strings.Join(msgs, "\n"))
	}

	// A server with a read token: the page takes it from ?token= (and drops it from the
	// address bar); without it every panel asks for it.
	locked, err := server.New(topic, &server.Options{Reads: out, ReadToken: "sesame", RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	hl := httptest.NewServer(locked)
	defer hl.Close()
	if err := chromedp.Do(ctx2,
		chromedp.Navigate(hl.URL+"/?token=sesame"),
		chromedp.WaitReady(`body[data-loaded="true"]`),
	); err != nil {
		t.Fatalf("browser: open the dashboard with a token: %v", err)
	}
	if n := evalInt(t, ctx2, `document.querySelectorAll("#trending-table tbody tr").length`); n == 0 {
		t.Errorf("no trending rows with the token given in the URL")
	}
	if n := evalInt(t, ctx2, `location.search.length + document.querySelectorAll(".note.bad:not([hidden])").length`); n != 0 {
		t.Errorf("the token stayed in the URL, or a panel failed")
	}
	hl2 := httptest.NewServer(locked) // another origin: no token kept
	defer hl2.Close()
	if err := chromedp.Do(ctx2,
		chromedp.Navigate(hl2.URL+"/"),
		chromedp.WaitReady(`body[data-loaded="true"]`),
	); err != nil {
		t.Fatalf("browser: open the dashboard without a token: %v", err)
	}
	if n := evalInt(t, ctx2, `Array.from(document.querySelectorAll("#panel-trending .note, #panel-tables .note")).filter(n => !n.hidden && n.textContent.includes("read token")).length`); n != 2 {
		t.Errorf("%d panels ask for the read token, want 2", n)
	}
	if msgs := console2.errors(); len(msgs) > 0 {
		t.Errorf("the dashboard with a read token wrote to the console:\n%s", strings.Join(msgs, "\n"))
	}
}

func evalInt(t *testing.T, ctx context.Context, js string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
	if err != nil {
		t.Fatalf("browser: %s: %v", js, err)
	}
	return n
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// consoleLog collects what a page writes to the console: console API calls, uncaught
// exceptions and browser log entries (failed loads, CSP violations).
type consoleLog struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func (c *consoleLog) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		out = append(out, fmt.Sprintf("%s (%s %s:%d)", m, m.Source, m.URL, m.Line))
	}
	return out
}

// errors returns the errors and exceptions, after a moment for the last messages to arrive.
func (c *consoleLog) errors() []string {
	time.Sleep(300 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, fmt.Sprintf("%s (%s %s:%d)", m, m.Source, m.URL, m.Line))
		}
	}
	return out
}

// openBrowser starts headless Chromium with a tab whose console is collected from the start.
func openBrowser(t *testing.T, chromium string) (context.Context, *consoleLog) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, 120*time.Second)
	c := &consoleLog{}
	cctx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(cctx) // subscribes now: before the first navigation
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stopConsole()
		<-done
		cancel()
		cancelBrowser()
		cancelAlloc()
	})
	return ctx, c
}

// saveScreenshot writes a PNG to $LAKE_ARTIFACTS_DIR (else the test's temporary directory),
// logs where, and checks that it is a picture of a page, not an empty one.
func saveScreenshot(t *testing.T, name string, b []byte) {
	t.Helper()
	dir := os.Getenv("LAKE_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(b))
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: not a PNG: %v", p, err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: %v", p, err)
	}
	colors := map[uint32]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y && len(colors) < 16; y += 7 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if cfg.Width < 800 || cfg.Height < 600 || len(b) < 20<<10 || len(colors) < 16 {
		t.Errorf("screenshot %s: %dx%d, %d bytes, %d colours: too small or blank", p, cfg.Width, cfg.Height, len(b), len(colors))
	}
}

// buildDashboardTables writes an events table (a generated data set, then a file with a surge
// of one item in the last closed hour and two records that go to quarantine) and runs ALS and
// trending on it, registered in the model registry. It returns the events table and the
// outputs prefix.
func buildDashboardTables(t *testing.T) (events, prefix string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	events, prefix = filepath.Join(dir, "events"), filepath.Join(dir, "out")
	d, err := jobs.Generate(&jobs.GenOptions{Users: 150, Items: 60, Days: 3, Interactions: 3000, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.WriteDataset(ctx, events, d); err != nil {
		t.Fatal(err)
	}
	params := trending.Params{Window: time.Hour}
	// Where the last closed window is, from a run into a scratch prefix.
	probe, err := trending.Run(ctx, &trending.Options{Source: events, SourceVersion: -1, Output: filepath.Join(dir, "probe"), Params: params})
	if err != nil {
		t.Fatal(err)
	}
	var nd bytes.Buffer
	for i := range 30 {
		at := probe.LastWindow.Add(time.Duration(i) * 90 * time.Second)
		fmt.Fprintf(&nd, `{"user_id": %q, "item_id": %q, "interaction_type": "view", "timestamp": %q}`+"\n", jobs.UserID(int32(100+i)), jobs.ItemID(5), at.Format(time.RFC3339))
	}
	nd.WriteString(`{"user_id": "u1", "item_id": "i1", "interaction_type": "view", "timestamp": "the day before yesterday"}` + "\n")
	nd.WriteString("this line is not JSON\n")
	file := filepath.Join(dir, "more.ndjson")
	if err := os.WriteFile(file, nd.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tb, err := table.Open(ctx, events, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	snap, err := tb.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	quarantine, err := source.QuarantineURI(events)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := source.OpenSink(ctx, tb, quarantine, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	in, err := source.OpenInput(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	res, err := sink.Ingest(ctx, []*source.Input{in}, &source.IngestOptions{Standardize: source.Options{Schema: snap.Schema()}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 30 || res.Quarantined != 2 {
		t.Fatalf("ingest: %d written, %d quarantined (%v); want 30 and 2", res.Written, res.Quarantined, res.Reasons)
	}

	als, err := jobs.RunALS(ctx, &jobs.ALSJobOptions{Source: events, SourceVersion: -1, Output: prefix, Top: 10,
		ALS: jobs.ALSOptions{Factors: 8, Iterations: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := registry.RegisterALS(ctx, prefix, als, nil); err != nil {
		t.Fatal(err)
	}
	tr, err := trending.Run(ctx, &trending.Options{Source: events, SourceVersion: -1, Output: prefix, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.LastWindow.Equal(probe.LastWindow) {
		t.Fatalf("the last closed window moved from %v to %v", probe.LastWindow, tr.LastWindow)
	}
	if _, err := registry.RegisterTrending(ctx, prefix, tr.SourceVersion, tr.Outputs, nil); err != nil {
		t.Fatal(err)
	}
	return events, prefix
}
