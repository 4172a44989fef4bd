package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"gocloud.dev/pubsub"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

func pairSchema(key string) *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: key, Type: txlog.String},
		{Name: map[string]string{"item_id": "similar_item_id", "user_id": "item_id"}[key], Type: txlog.String},
		{Name: "score", Type: txlog.Double},
		{Name: "rank", Type: txlog.Integer},
	}}
}

func windowSchema(trending bool) *txlog.StructType {
	f := []txlog.StructField{
		{Name: "window_start", Type: txlog.Timestamp},
		{Name: "item_id", Type: txlog.String},
		{Name: "count", Type: txlog.Long},
	}
	if trending {
		f = append(f, txlog.StructField{Name: "expected", Type: txlog.Double}, txlog.StructField{Name: "score", Type: txlog.Double})
	}
	return &txlog.StructType{Fields: append(f, txlog.StructField{Name: "rank", Type: txlog.Integer})}
}

// writeRows replaces the rows of the table at uri (created with schema if need be) and returns
// the version committed. Each row holds one Go value per column: string, float64, int64, int32,
// time.Time (timestamp or date).
func writeRows(t testing.TB, uri string, schema *txlog.StructType, rows [][]any) int64 {
	t.Helper()
	return writeRowsMode(t, uri, schema, rows, writer.Overwrite)
}

func writeRowsMode(t testing.TB, uri string, schema *txlog.StructType, rows [][]any, mode writer.Mode) int64 {
	t.Helper()
	ctx := context.Background()
	tb, err := table.Open(ctx, uri, nil)
	if err != nil {
		if tb, err = table.Create(ctx, uri, schema, nil); err != nil {
			t.Fatal(err)
		}
	}
	defer tb.Close()
	w, err := writer.New(ctx, tb, &writer.Options{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, w.Schema())
	defer b.Release()
	for _, row := range rows {
		for i, v := range row {
			if v == nil {
				b.Field(i).AppendNull()
				continue
			}
			switch fb := b.Field(i).(type) {
			case *array.StringBuilder:
				fb.Append(v.(string))
			case *array.Float64Builder:
				fb.Append(v.(float64))
			case *array.Int64Builder:
				fb.Append(v.(int64))
			case *array.Int32Builder:
				fb.Append(int32(v.(int)))
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(v.(time.Time).UnixMicro()))
			case *array.Date32Builder:
				fb.Append(arrow.Date32FromTime(v.(time.Time)))
			default:
				t.Fatalf("writeRows: builder %T", fb)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res.Version
}

var t0 = time.Date(2024, 5, 6, 10, 0, 0, 0, time.UTC)

// fixture writes the four outputs (and an events table) under a temporary prefix.
type fixture struct {
	prefix, events string
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	f := &fixture{prefix: filepath.Join(dir, "out"), events: filepath.Join(dir, "events")}
	writeRows(t, jobs.ChildURI(f.prefix, OutSimilar), pairSchema("item_id"), [][]any{
		{"i1", "i2", 0.9, 1}, {"i1", "i3", 0.8, 2}, {"i1", "i4", 0.7, 3},
		{"i2", "i1", 0.9, 1}, {"i2", "i5", 0.5, 2},
		{"i 7/x", "i1", 0.4, 1},
	})
	writeRows(t, jobs.ChildURI(f.prefix, OutRecs), pairSchema("user_id"), [][]any{
		{"u1", "i3", 2.5, 1}, {"u1", "i4", 2.0, 2},
	})
	writeRows(t, jobs.ChildURI(f.prefix, OutTrend), windowSchema(true), [][]any{
		{t0, "i9", int64(30), 3.0, 12.0, 1}, {t0, "i8", int64(20), 4.0, 8.0, 2},
		{t0.Add(time.Hour), "i6", int64(10), 1.0, 9.0, 1},
		{t0.Add(3 * time.Hour), "i7", int64(40), 5.0, 15.0, 1},
	})
	writeRows(t, jobs.ChildURI(f.prefix, OutPopular), windowSchema(false), [][]any{
		{t0, "i1", int64(100), 1}, {t0, "i2", int64(90), 2},
		{t0.Add(time.Hour), "i2", int64(95), 1},
		{t0.Add(2 * time.Hour), "i1", int64(120), 1}, {t0.Add(2 * time.Hour), "i3", int64(60), 2},
	})
	ts := t0.Add(3 * time.Hour)
	writeRows(t, f.events, table.InteractionSchema(), [][]any{
		{"e1", "u9", "i1", "view", ts, ts, nil, nil, nil},
		{"e2", "u9", "i2", "view", ts.Add(time.Minute), ts, nil, nil, nil},
		{"e3", "u8", "i5", "view", ts, ts, nil, nil, nil},
		{"e4", `o'b, "x"`, "i2", "view", ts, ts, nil, nil, nil},
	})
	return f
}

func (f *fixture) outputs(t *testing.T, opts *OutputsOptions) *Outputs {
	t.Helper()
	var o OutputsOptions
	if opts != nil {
		o = *opts
	}
	o.Events = f.events
	out, err := NewOutputs(f.prefix, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	if err := out.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out
}

func get[T any](t *testing.T, h *harness, target string, wantStatus int, hdr map[string]string) (T, *httptest.ResponseRecorder) {
	t.Helper()
	w := h.do(t, "GET", target, "", hdr)
	var v T
	if w.Code != wantStatus {
		t.Fatalf("GET %s: %d %s, want %d", target, w.Code, w.Body, wantStatus)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", target, ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("GET %s: %v in %s", target, err, w.Body)
	}
	return v, w
}

type errBody struct {
	Error string `json:"error"`
}

func checkVersion(t *testing.T, w *httptest.ResponseRecorder, body int64) {
	t.Helper()
	if got := w.Header().Get(VersionHeader); got != strconv.FormatInt(body, 10) {
		t.Errorf("%s header %q, body version %d", VersionHeader, got, body)
	}
}

func TestReadSimilar(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, &Options{Reads: f.outputs(t, nil), MaxK: 2})
	a, w := get[SimilarAnswer](t, h, "/v1/items/i1/similar?k=5", 200, nil)
	checkVersion(t, w, a.Version)
	want := []ItemScore{{"i2", 0.9, 1}, {"i3", 0.8, 2}} // capped at MaxK
	if a.ItemID != "i1" || a.Version != 1 || fmt.Sprint(a.Items) != fmt.Sprint(want) {
		t.Errorf("got %+v, want item i1 version 1 items %v", a, want)
	}
	a, _ = get[SimilarAnswer](t, h, "/v1/items/i2/similar?k=1", 200, nil)
	if len(a.Items) != 1 || a.Items[0].ItemID != "i1" {
		t.Errorf("k=1: %+v", a)
	}
	a, _ = get[SimilarAnswer](t, h, "/v1/items/i%207%2Fx/similar", 200, nil)
	if a.ItemID != "i 7/x" || len(a.Items) != 1 {
		t.Errorf("escaped id: %+v", a)
	}
	e, w := get[errBody](t, h, "/v1/items/nope/similar", 404, nil)
	if !strings.Contains(e.Error, `"nope"`) {
		t.Errorf("404 error %q", e.Error)
	}
	checkVersion(t, w, 1)
	for _, k := range []string{"0", "-3", "abc", "1.5", ""} {
		e, _ := get[errBody](t, h, "/v1/items/i1/similar?k="+k, 400, nil)
		if !strings.Contains(e.Error, "k=") {
			t.Errorf("k=%s: %q", k, e.Error)
		}
	}
}

func TestReadRecommendations(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, &Options{Reads: f.outputs(t, nil)})
	cases := []struct {
		user, source string
		version      int64
		items        []string
	}{
		{"u1", SourceModel, 1, []string{"i3", "i4"}},
		// u9 touched i2 then i1: similar to those, without them.
		{"u9", SourceRecent, 1, []string{"i3", "i4", "i5"}},
		{`o'b, "x"`, SourceRecent, 1, []string{"i1", "i5"}},
		// u7 has no events: trending's latest window.
		{"u7", SourceTrending, 1, []string{"i7"}},
	}
	for _, c := range cases {
		a, w := get[RecsAnswer](t, h, "/v1/users/"+url.PathEscape(c.user)+"/recommendations", 200, nil)
		checkVersion(t, w, a.Version)
		var items []string
		for i, it := range a.Items {
			items = append(items, it.ItemID)
			if it.Rank != int32(i+1) {
				t.Errorf("%s: rank %d at %d", c.user, it.Rank, i)
			}
		}
		if a.UserID != c.user || a.Source != c.source || a.Version != c.version || fmt.Sprint(items) != fmt.Sprint(c.items) {
			t.Errorf("%s: got %+v, want source %s items %v", c.user, a, c.source, c.items)
		}
	}
	// Without trending rows in the latest window: popular.
	writeRows(t, jobs.ChildURI(f.prefix, OutTrend), windowSchema(true), [][]any{})
	if err := h.srv.opts.Reads.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	a, _ := get[RecsAnswer](t, h, "/v1/users/u7/recommendations?k=1", 200, nil)
	if a.Source != SourcePopular || len(a.Items) != 1 || a.Items[0].ItemID != "i1" || a.Items[0].Score != 120 {
		t.Errorf("popular fallback: %+v", a)
	}
	get[errBody](t, h, "/v1/users/u1/recommendations?k=x", 400, nil)
}

func TestReadTrendingPopular(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, &Options{Reads: f.outputs(t, nil)})
	a, w := get[WindowAnswer](t, h, "/v1/trending", 200, nil)
	checkVersion(t, w, a.Version)
	if a.WindowStart != t0.Add(3*time.Hour).Format(time.RFC3339) || len(a.Items) != 1 || a.Items[0] != (WindowItem{"i7", 40, 15, 1}) {
		t.Errorf("latest trending: %+v", a)
	}
	a, _ = get[WindowAnswer](t, h, "/v1/trending?k=1&at="+t0.Add(30*time.Minute).Format(time.RFC3339), 200, nil)
	if a.WindowStart != t0.Format(time.RFC3339) || len(a.Items) != 1 || a.Items[0] != (WindowItem{"i9", 30, 12, 1}) {
		t.Errorf("trending at: %+v", a)
	}
	// A closed window with no trending item: an empty list.
	a, _ = get[WindowAnswer](t, h, "/v1/trending?at="+t0.Add(150*time.Minute).Format(time.RFC3339), 200, nil)
	if a.WindowStart != t0.Add(2*time.Hour).Format(time.RFC3339) || a.Items == nil || len(a.Items) != 0 {
		t.Errorf("empty window: %+v", a)
	}
	get[errBody](t, h, "/v1/trending?at="+t0.Add(5*time.Hour).Format(time.RFC3339), 404, nil)
	get[errBody](t, h, "/v1/trending?at="+t0.Add(-5*time.Hour).Format(time.RFC3339), 404, nil)
	get[errBody](t, h, "/v1/trending?at=yesterday", 400, nil)

	p, w := get[WindowAnswer](t, h, "/v1/popular?k=5", 200, nil)
	checkVersion(t, w, p.Version)
	want := []WindowItem{{"i1", 120, 120, 1}, {"i3", 60, 60, 2}}
	if p.WindowStart != t0.Add(2*time.Hour).Format(time.RFC3339) || fmt.Sprint(p.Items) != fmt.Sprint(want) {
		t.Errorf("popular: %+v, want %v", p, want)
	}
	p, _ = get[WindowAnswer](t, h, "/v1/popular?at="+t0.Add(90*time.Minute).Format(time.RFC3339Nano), 200, nil)
	if p.WindowStart != t0.Add(time.Hour).Format(time.RFC3339) || len(p.Items) != 1 || p.Items[0].ItemID != "i2" {
		t.Errorf("popular at: %+v", p)
	}
}

func TestReadMissingOutputs(t *testing.T) {
	dir := t.TempDir()
	out, err := NewOutputs(filepath.Join(dir, "out"), &OutputsOptions{Events: filepath.Join(dir, "events")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, &Options{Reads: out})
	for target, job := range map[string]string{
		"/v1/items/i1/similar":         "lake als",
		"/v1/users/u1/recommendations": "lake als",
		"/v1/trending":                 "lake trending",
		"/v1/popular":                  "lake trending",
	} {
		e, _ := get[errBody](t, h, target, 503, nil)
		if !strings.Contains(e.Error, job) || !strings.Contains(e.Error, "not a table yet") {
			t.Errorf("%s: %q, want it to name %s", target, e.Error, job)
		}
	}
	// A server without outputs at all.
	h = newHarness(t, nil)
	e, _ := get[errBody](t, h, "/v1/popular", 503, nil)
	if !strings.Contains(e.Error, "--outputs") {
		t.Errorf("no outputs: %q", e.Error)
	}
}

func TestReadToken(t *testing.T) {
	f := newFixture(t)
	h := newHarness(t, &Options{Reads: f.outputs(t, nil), ReadToken: "sesame", WriteToken: "w"})
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer nope"}, {"Authorization": "sesame"}, {"Authorization": "Bearer w"}} {
		for _, target := range []string{"/v1/items/i1/similar", "/v1/users/u1/recommendations", "/v1/trending", "/v1/popular"} {
			w := h.do(t, "GET", target, "", hdr)
			if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s with %v: %d", target, hdr, w.Code)
			}
		}
	}
	get[SimilarAnswer](t, h, "/v1/items/i1/similar", 200, map[string]string{"Authorization": "Bearer sesame"})
	// The pixel stays public.
	if w := h.do(t, "GET", "/p.gif?u=u1&i=i1&t=view", "", nil); w.Code != 200 {
		t.Errorf("pixel with a read token set: %d", w.Code)
	}
}

// A version whose similar lists all carry score v and v+1 entries: an answer mixing two
// versions would show it.
func versionRows(v int64) [][]any {
	var rows [][]any
	for _, item := range []string{"a", "b", "c"} {
		for r := range int(v) + 1 {
			rows = append(rows, []any{item, fmt.Sprintf("s%d", r), float64(v), r + 1})
		}
	}
	return rows
}

func TestReadSwapUnderLoad(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "out")
	uri := jobs.ChildURI(prefix, OutSimilar)
	if v := writeRows(t, uri, pairSchema("item_id"), versionRows(1)); v != 1 {
		t.Fatalf("first version %d", v)
	}
	out, err := NewOutputs(prefix, &OutputsOptions{Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan struct{})
	go func() { defer close(runDone); out.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	h := newHarness(t, &Options{Reads: out, RateLimit: -1})
	ts := httptest.NewServer(h.srv)
	defer ts.Close()

	deadline := time.Now().Add(10 * time.Second)
	for out.similar.cur.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	const last = 5
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		seen     = map[int64]int{}
		failures []string
	)
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, s)
		}
	}
	for c := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			item := []string{"a", "b", "c"}[c]
			for !stop.Load() {
				resp, err := ts.Client().Get(ts.URL + "/v1/items/" + item + "/similar?k=100")
				if err != nil {
					fail(err.Error())
					return
				}
				var a SimilarAnswer
				err = json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					fail(fmt.Sprintf("status %d, %v", resp.StatusCode, err))
					continue
				}
				if resp.Header.Get(VersionHeader) != strconv.FormatInt(a.Version, 10) {
					fail(fmt.Sprintf("header %s, body version %d", resp.Header.Get(VersionHeader), a.Version))
				}
				if len(a.Items) != int(a.Version)+1 {
					fail(fmt.Sprintf("version %d with %d items", a.Version, len(a.Items)))
				}
				for _, it := range a.Items {
					if it.Score != float64(a.Version) {
						fail(fmt.Sprintf("version %d holds an item of score %v: a mixed answer", a.Version, it.Score))
						break
					}
				}
				mu.Lock()
				seen[a.Version]++
				mu.Unlock()
			}
		}()
	}
	for v := int64(2); v <= last; v++ {
		time.Sleep(50 * time.Millisecond)
		if got := writeRows(t, uri, pairSchema("item_id"), versionRows(v)); got != v {
			t.Fatalf("committed version %d, want %d", got, v)
		}
	}
	for time.Now().Before(deadline) {
		if p := out.similar.cur.Load(); p != nil && p.version == last {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, f := range failures {
		t.Error(f)
	}
	if seen[1] == 0 || seen[last] == 0 {
		t.Errorf("answers per version %v: want the first and the last version served", seen)
	}
	t.Logf("answers per version: %v", seen)
}

// The recent fallback reads only the newest files of the events table, and sees new commits.
func TestReadRecentNewestFiles(t *testing.T) {
	f := newFixture(t)
	ts := t0.Add(4 * time.Hour)
	writeRowsMode(t, f.events, table.InteractionSchema(), [][]any{{"e10", "u5", "i1", "view", ts, ts, nil, nil, nil}}, writer.Append)
	time.Sleep(5 * time.Millisecond) // a later modification time
	writeRowsMode(t, f.events, table.InteractionSchema(), [][]any{{"e11", "u5", "i2", "view", ts.Add(time.Minute), ts, nil, nil, nil}}, writer.Append)
	for _, c := range []struct {
		files int
		want  string
	}{{1, "[i1 i5]"}, {8, "[i3 i4 i5]"}} {
		out := f.outputs(t, &OutputsOptions{RecentFiles: c.files})
		h := newHarness(t, &Options{Reads: out})
		a, _ := get[RecsAnswer](t, h, "/v1/users/u5/recommendations", 200, nil)
		var items []string
		for _, it := range a.Items {
			items = append(items, it.ItemID)
		}
		if a.Source != SourceRecent || fmt.Sprint(items) != c.want {
			t.Errorf("RecentFiles %d: %+v, want recent %s", c.files, a, c.want)
		}
		if c.files == 8 {
			// A later commit is seen after a refresh.
			get[RecsAnswer](t, h, "/v1/users/u6/recommendations", 200, nil)
			writeRowsMode(t, f.events, table.InteractionSchema(), [][]any{{"e12", "u6", "i2", "view", ts, ts, nil, nil, nil}}, writer.Append)
			if err := out.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if a, _ := get[RecsAnswer](t, h, "/v1/users/u6/recommendations", 200, nil); a.Source != SourceRecent {
				t.Errorf("u6 after its first event: %+v", a)
			}
		}
	}
}

// BenchmarkReadSimilar: one GET /v1/items/{id}/similar?k=20 against 10,000 items x 20 similar
// items held in memory, through the handler (no network).
func BenchmarkReadSimilar(b *testing.B) {
	lists := map[string][]ranked{}
	for i := range 10000 {
		l := make([]ranked, 20)
		for r := range l {
			l[r] = ranked{item: "i" + strconv.Itoa((i+r+1)%10000), score: 1 / float64(r+1), rank: int32(r + 1)}
		}
		lists["i"+strconv.Itoa(i)] = l
	}
	out, err := NewOutputs("mem://bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	out.similar.cur.Store(&pairTable{version: 7, lists: lists})
	srv, err := New(nopSender{}, &Options{Reads: out, RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req := httptest.NewRequest("GET", "/v1/items/i"+strconv.Itoa(i%10000)+"/similar?k=20", nil)
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code, w.Body)
			}
			i++
		}
	})
}

type nopSender struct{}

func (nopSender) Send(context.Context, *pubsub.Message) error { return nil }

// The outputs of a real lake trending run: the window length and the latest closed window come
// from the job's lineage.
func TestReadTrendingFromJob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := jobs.Generate(&jobs.GenOptions{Users: 200, Items: 80, Days: 3, Interactions: 3000, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "events")
	if _, err := jobs.WriteDataset(ctx, events, d); err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(dir, "out")
	res, err := trending.Run(ctx, &trending.Options{Source: events, SourceVersion: -1, Output: prefix, Params: trending.Params{Window: 2 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := NewOutputs(prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, sl := range []*slot[windowTable]{&out.trending, &out.popular} {
		wt := sl.cur.Load()
		if wt == nil {
			t.Fatalf("%s not loaded: %s", sl.name, sl.unavailable())
		}
		if wt.length != 2*time.Hour || !wt.latest.Equal(res.LastWindow) {
			t.Errorf("%s: window %v, latest %v; want 2h and %v", sl.name, wt.length, wt.latest, res.LastWindow)
		}
	}
	h := newHarness(t, &Options{Reads: out})
	a, _ := get[WindowAnswer](t, h, "/v1/trending", 200, nil)
	if a.WindowStart != res.LastWindow.UTC().Format(time.RFC3339) {
		t.Errorf("trending window %s, want %s", a.WindowStart, res.LastWindow)
	}
	a, _ = get[WindowAnswer](t, h, "/v1/popular?at="+res.LastWindow.Add(-90*time.Minute).Format(time.RFC3339), 200, nil)
	if a.WindowStart != res.LastWindow.Add(-2*time.Hour).UTC().Format(time.RFC3339) || len(a.Items) == 0 {
		t.Errorf("popular at: %+v", a)
	}
}
