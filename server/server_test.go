package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/mempubsub"
)

type harness struct {
	srv   *Server
	topic *pubsub.Topic
	sub   *pubsub.Subscription
}

func newHarness(t *testing.T, opts *Options) *harness {
	t.Helper()
	topic := mempubsub.NewTopic()
	sub := mempubsub.NewSubscription(topic, time.Minute)
	t.Cleanup(func() {
		ctx := context.Background()
		sub.Shutdown(ctx)
		topic.Shutdown(ctx)
	})
	if opts == nil {
		opts = &Options{}
	}
	srv, err := New(topic, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{srv: srv, topic: topic, sub: sub}
}

func (h *harness) do(t *testing.T, method, target string, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.srv.ServeHTTP(w, req)
	return w
}

// receive reads n queued messages as JSON objects.
func (h *harness) receive(t *testing.T, n int) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []map[string]any
	for range n {
		m, err := h.sub.Receive(ctx)
		if err != nil {
			t.Fatalf("receive after %d of %d: %v", len(out), n, err)
		}
		m.Ack()
		var v map[string]any
		if err := json.Unmarshal(m.Body, &v); err != nil {
			t.Fatalf("message %s: %v", m.Body, err)
		}
		if m.Metadata[ReceivedKey] == "" {
			t.Errorf("message without %s metadata", ReceivedKey)
		}
		out = append(out, v)
	}
	return out
}

func (h *harness) expectEmpty(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if m, err := h.sub.Receive(ctx); err == nil {
		t.Fatalf("unexpected message %s", m.Body)
	}
}

func errorBody(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("want a JSON error body, got %q (%v)", w.Body.String(), err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	return e.Error
}

func TestPixel(t *testing.T) {
	h := newHarness(t, nil)
	w := h.do(t, "GET", "/p.gif?u=alice&i=sku-1&t=view&ts=1700000000123&v=2.5&p.page=home", "", nil)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "image/gif" {
		t.Errorf("Content-Type %q", ct)
	}
	if !bytes.HasPrefix(w.Body.Bytes(), []byte("GIF89a")) || w.Body.Len() != len(gif1x1) {
		t.Errorf("body is not the 1x1 GIF: %q", w.Body.Bytes())
	}
	ev := h.receive(t, 1)[0]
	if ev["user_id"] != "alice" || ev["item_id"] != "sku-1" || ev["interaction_type"] != "view" ||
		ev["timestamp"] != 1700000000123.0 || ev["value"] != 2.5 || ev["source"] != "collector" {
		t.Errorf("event %v", ev)
	}
	if p, _ := ev["properties"].(map[string]any); p["page"] != "home" {
		t.Errorf("properties %v", ev["properties"])
	}
	id, err := uuid.Parse(ev["event_id"].(string))
	if err != nil || id.Version() != 7 {
		t.Errorf("event_id %v is not a UUIDv7 (%v)", ev["event_id"], err)
	}

	// A beacon posts the same query string.
	w = h.do(t, "POST", "/p.gif?u=bob&i=sku-2&t=click", "", nil)
	if w.Code != http.StatusNoContent {
		t.Fatalf("beacon status %d", w.Code)
	}
	ev = h.receive(t, 1)[0]
	ts, _ := ev["timestamp"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("a pixel without ts gets the arrival time, got %v", ev["timestamp"])
	}

	for _, target := range []string{"/p.gif?i=x&t=view", "/p.gif?u=a&t=view", "/p.gif?u=a&i=x", "/p.gif?u=a&i=x&t=view&ts=yesterday", "/p.gif?u=a&i=x&t=view&v=lots"} {
		w := h.do(t, "GET", target, "", nil)
		if w.Code != 400 {
			t.Errorf("%s: status %d, want 400", target, w.Code)
			continue
		}
		if msg := errorBody(t, w); !strings.Contains(msg, "u=") && !strings.Contains(msg, "ts") && !strings.Contains(msg, "v ") {
			t.Errorf("%s: error %q does not say what is expected", target, msg)
		}
	}
	h.expectEmpty(t)
}

func TestEventsFormats(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		name, body string
		n          int
	}{
		{"object", `{"user_id":"u1","item_id":"i1","interaction_type":"view","timestamp":"2024-01-02T03:04:05+02:00"}`, 1},
		{"array", `[{"user_id":"u1","item_id":"i1","interaction_type":"view","timestamp":1700000000000},
		            {"event_id":"e-2","user_id":"u2","item_id":"i2","interaction_type":"purchase","value":9.5,"source":"app","properties":{"k":"v"}}]`, 2},
		{"ndjson", "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"interaction_type\":\"view\"}\n\n{\"user_id\":\"u2\",\"item_id\":\"i2\",\"interaction_type\":\"click\",\"event_date\":\"2024-01-02\"}\n", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := h.do(t, "POST", "/v1/events", c.body, map[string]string{"Content-Type": "application/json"})
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var got struct{ Accepted int }
			json.Unmarshal(w.Body.Bytes(), &got)
			if got.Accepted != c.n {
				t.Errorf("accepted %d, want %d", got.Accepted, c.n)
			}
			evs := h.receive(t, c.n)
			for _, ev := range evs {
				if ev["event_id"] == "" || ev["event_id"] == nil {
					t.Errorf("no event_id: %v", ev)
				}
				if ev["timestamp"] == nil {
					t.Errorf("no timestamp: %v", ev)
				}
				if ev["event_id"] == "e-2" && (ev["source"] != "app" || ev["value"] != 9.5) {
					t.Errorf("given fields not kept: %v", ev)
				}
				if ev["event_id"] != "e-2" && ev["source"] != "collector" {
					t.Errorf("source %v", ev["source"])
				}
			}
			if c.name == "ndjson" {
				found := false
				for _, ev := range evs {
					found = found || ev["event_date"] == "2024-01-02"
				}
				if !found {
					t.Errorf("extra keys are passed through for the standardiser: %v", evs)
				}
			}
		})
	}
}

func TestEventsBadInput(t *testing.T) {
	h := newHarness(t, nil)
	cases := map[string]string{
		"empty":            ``,
		"not json":         `hello`,
		"truncated array":  `[{"user_id":"u"},`,
		"number":           `42`,
		"array of numbers": `[1,2]`,
		"missing user":     `{"item_id":"i","interaction_type":"view"}`,
		"empty item":       `{"user_id":"u","item_id":" ","interaction_type":"view"}`,
		"user not string":  `{"user_id":5,"item_id":"i","interaction_type":"view"}`,
		"bad timestamp":    `{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":"yesterday"}`,
		"fractional ms":    `{"user_id":"u","item_id":"i","interaction_type":"view","timestamp":1.5}`,
		"value string":     `{"user_id":"u","item_id":"i","interaction_type":"view","value":"x"}`,
		"properties array": `{"user_id":"u","item_id":"i","interaction_type":"view","properties":[1]}`,
		"ndjson bad line":  "{\"user_id\":\"u\",\"item_id\":\"i\",\"interaction_type\":\"view\"}\n{oops\n",
		"one bad of two":   `[{"user_id":"u","item_id":"i","interaction_type":"view"},{"user_id":"u"}]`,
		"invalid utf8":     "{\"user_id\":\"\xff\",\"item_id\":\"i\",\"interaction_type\":\"view\"}",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			w := h.do(t, "POST", "/v1/events", body, nil)
			if w.Code != 400 {
				t.Fatalf("status %d, want 400: %s", w.Code, w.Body)
			}
			errorBody(t, w)
		})
	}
	h.expectEmpty(t) // all or nothing
	w := h.do(t, "GET", "/v1/tables/other/events", "", nil)
	if w.Code != 404 {
		t.Errorf("unknown path: %d", w.Code)
	}
	errorBody(t, w)
	if w := h.do(t, "GET", "/v1/events", "", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/events: %d", w.Code)
	}
}

func TestEventsToken(t *testing.T) {
	h := newHarness(t, &Options{WriteToken: "s3cret"})
	body := `{"user_id":"u","item_id":"i","interaction_type":"view"}`
	for _, auth := range []string{"", "Bearer wrong", "s3cret", "Basic s3cret"} {
		w := h.do(t, "POST", "/v1/events", body, map[string]string{"Authorization": auth})
		if w.Code != 401 {
			t.Errorf("Authorization %q: status %d", auth, w.Code)
		}
		errorBody(t, w)
	}
	h.expectEmpty(t)
	if w := h.do(t, "POST", "/v1/events", body, map[string]string{"Authorization": "Bearer s3cret"}); w.Code != 202 {
		t.Fatalf("with the token: %d %s", w.Code, w.Body)
	}
	h.receive(t, 1)
	// The pixel is public by design.
	if w := h.do(t, "GET", "/p.gif?u=a&i=b&t=view", "", nil); w.Code != 200 {
		t.Errorf("pixel with a write token configured: %d", w.Code)
	}
	h.receive(t, 1)
}

func TestBodyCap(t *testing.T) {
	h := newHarness(t, &Options{MaxBodyBytes: 1000, MaxEvents: 3})
	ev := `{"user_id":"u","item_id":"i","interaction_type":"view"}`
	big := "[" + strings.Repeat(ev+",", 30) + ev + "]"
	w := h.do(t, "POST", "/v1/events", big, nil)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", w.Code)
	}
	errorBody(t, w)
	w = h.do(t, "POST", "/v1/events", "["+strings.Repeat(ev+",", 3)+ev+"]", nil)
	if w.Code != 400 || !strings.Contains(errorBody(t, w), "more than 3 events") {
		t.Fatalf("too many events: %d %s", w.Code, w.Body)
	}
	h.expectEmpty(t)
	// The default cap is 1 MiB.
	h2 := newHarness(t, nil)
	huge := `{"user_id":"u","item_id":"i","interaction_type":"view","properties":{"x":"` + strings.Repeat("a", 1<<20) + `"}}`
	if w := h2.do(t, "POST", "/v1/events", huge, nil); w.Code != 413 {
		t.Fatalf("1 MiB default: %d", w.Code)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { return now }
	h := newHarness(t, &Options{RateLimit: 2, RateBurst: 3, Now: clock})
	get := func(ip string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/p.gif?u=a&i=b&t=view", nil)
		req.RemoteAddr = ip + ":12345"
		req.Header.Set("X-Forwarded-For", "10.9.9.9") // not trusted
		w := httptest.NewRecorder()
		h.srv.ServeHTTP(w, req)
		return w
	}
	for i := range 3 {
		if w := get("192.0.2.1"); w.Code != 200 {
			t.Fatalf("request %d within the burst: %d", i, w.Code)
		}
	}
	w := get("192.0.2.1")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the burst: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	errorBody(t, w)
	if w := get("192.0.2.2"); w.Code != 200 {
		t.Fatalf("another client is not limited: %d", w.Code)
	}
	now = now.Add(time.Second) // two more tokens
	for i := range 2 {
		if w := get("192.0.2.1"); w.Code != 200 {
			t.Fatalf("after a second, request %d: %d", i, w.Code)
		}
	}
	if w := get("192.0.2.1"); w.Code != 429 {
		t.Fatalf("tokens used up again: %d", w.Code)
	}
	h.receive(t, 6)

	off := newHarness(t, &Options{RateLimit: -1})
	for range 1000 {
		if w := off.do(t, "GET", "/p.gif?u=a&i=b&t=view", "", nil); w.Code != 200 {
			t.Fatalf("limit off: %d", w.Code)
		}
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t, nil)
	for _, path := range []string{"/v1/events", "/p.gif"} {
		w := h.do(t, "OPTIONS", path, "", map[string]string{
			"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "content-type,authorization",
		})
		if w.Code != http.StatusNoContent {
			t.Fatalf("%s preflight: %d", path, w.Code)
		}
		hd := w.Header()
		if hd.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(hd.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(hd.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("%s preflight headers: %v", path, hd)
		}
	}
	w := h.do(t, "POST", "/v1/events", `{"user_id":"u","item_id":"i","interaction_type":"view"}`, map[string]string{"Origin": "https://shop.example"})
	if w.Code != 202 || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("simple request: %d %v", w.Code, w.Header())
	}
	h.receive(t, 1)

	only := newHarness(t, &Options{AllowedOrigins: []string{"https://shop.example"}})
	w = only.do(t, "OPTIONS", "/v1/events", "", map[string]string{"Origin": "https://evil.example"})
	if w.Code != 403 {
		t.Errorf("preflight from a foreign origin: %d", w.Code)
	}
	w = only.do(t, "OPTIONS", "/v1/events", "", map[string]string{"Origin": "https://shop.example"})
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Errorf("preflight from the allowed origin: %d %v", w.Code, w.Header())
	}
}

func TestMetricsText(t *testing.T) {
	h := newHarness(t, &Options{WriteToken: "x"})
	h.do(t, "GET", "/p.gif?u=a&i=b&t=view", "", nil)
	h.do(t, "GET", "/p.gif?u=a&t=view", "", nil)
	h.do(t, "POST", "/v1/events", `{}`, nil)
	h.srv.Metrics().ObserveCommit(CommitObservation{Committer: "c1", Version: 7, Committed: 10, Quarantined: 2, Duplicate: 1, Lag: 1500 * time.Millisecond})
	w := h.do(t, "GET", "/metrics", "", nil)
	if w.Code != 200 {
		t.Fatalf("metrics: %d", w.Code)
	}
	text := w.Body.String()
	for _, want := range []string{
		"lake_collector_events_accepted_total 1",
		`lake_collector_events_rejected_total{reason="bad_event"} 1`,
		`lake_collector_events_rejected_total{reason="unauthorized"} 1`,
		`lake_committer_events_committed_total{committer="c1"} 10`,
		`lake_committer_events_quarantined_total{committer="c1"} 2`,
		`lake_committer_events_duplicate_total{committer="c1"} 1`,
		`lake_committer_queue_lag_seconds{committer="c1"} 1.5`,
		`lake_committer_table_version{committer="c1"} 7`,
		"go_goroutines",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics text lacks %q", want)
		}
	}
	h.receive(t, 1)
	if w := h.do(t, "GET", "/healthz", "", nil); w.Code != 200 {
		t.Errorf("healthz %d", w.Code)
	}
}

func TestPixelJSAndDemo(t *testing.T) {
	h := newHarness(t, nil)
	w := h.do(t, "GET", "/pixel.js", "", nil)
	if w.Code != 200 || !strings.Contains(w.Header().Get("Content-Type"), "javascript") ||
		!strings.Contains(w.Body.String(), "sendBeacon") || !strings.Contains(w.Body.String(), "data-item") {
		t.Fatalf("pixel.js: %d %v", w.Code, w.Header())
	}
	if w := h.do(t, "GET", "/demo/", "", nil); w.Code != 404 {
		t.Errorf("demo without DemoSite: %d", w.Code)
	}
	d := newHarness(t, &Options{DemoSite: true})
	w = d.do(t, "GET", "/demo/", "", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `src="/pixel.js"`) {
		t.Fatalf("demo: %d", w.Code)
	}
}

func TestQueueDown(t *testing.T) {
	h := newHarness(t, nil)
	h.topic.Shutdown(context.Background())
	w := h.do(t, "GET", "/p.gif?u=a&i=b&t=view", "", nil)
	if w.Code != 503 {
		t.Fatalf("status %d, want 503", w.Code)
	}
	errorBody(t, w)
}

func TestServeGracefulShutdown(t *testing.T) {
	h := newHarness(t, nil)
	ts := httptest.NewUnstartedServer(nil)
	ln := ts.Listener
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h.srv, nil) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/p.gif?u=a&i=b&t=view")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	h.receive(t, 1)
}
