package server

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// histogram returns the sample count and sum of the histogram name{label=value} in m.
func histogram(t *testing.T, m *Metrics, name, label, value string) (uint64, float64) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			if hasLabel(mt, label, value) {
				return mt.GetHistogram().GetSampleCount(), mt.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// Requests through the handler move the read counters and histograms under the right labels.
func TestReadMetrics(t *testing.T) {
	f := newFixture(t)
	m := NewMetrics()
	h := newHarness(t, &Options{Reads: f.outputs(t, nil), Metrics: m, RateLimit: -1})
	for _, c := range []struct {
		target string
		status int
	}{
		{"/v1/items/i1/similar", 200},
		{"/v1/items/i2/similar?k=1", 200},
		{"/v1/items/nope/similar", 404},
		{"/v1/items/i1/similar?k=x", 400},
		{"/v1/users/u1/recommendations", 200},     // model
		{"/v1/users/u9/recommendations", 200},     // recent
		{"/v1/users/nobody/recommendations", 200}, // trending
		{"/v1/trending", 200},
		{"/v1/popular", 200},
		{"/v1/popular?at=yesterday", 400},
		{"/p.gif?u=u1&i=i1&t=view", 200}, // not a read
	} {
		if w := h.do(t, "GET", c.target, "", nil); w.Code != c.status {
			t.Fatalf("GET %s: %d %s, want %d", c.target, w.Code, w.Body, c.status)
		}
	}
	counts := map[[2]string]float64{
		{"similar", "2xx"}: 2, {"similar", "4xx"}: 2, {"similar", "5xx"}: 0,
		{"recommendations", "2xx"}: 3, {"recommendations", "4xx"}: 0,
		{"trending", "2xx"}: 1, {"popular", "2xx"}: 1, {"popular", "4xx"}: 1,
		{"models", "2xx"}: 0,
	}
	for l, want := range counts {
		if got := testutil.ToFloat64(m.read.requests.WithLabelValues(l[0], l[1])); got != want {
			t.Errorf("lake_read_requests_total{endpoint=%q,code=%q} = %v, want %v", l[0], l[1], got, want)
		}
	}
	for ep, want := range map[string]uint64{"similar": 4, "recommendations": 3, "trending": 1, "popular": 2, "models": 0} {
		n, sum := histogram(t, m, "lake_read_request_duration_seconds", "endpoint", ep)
		if n != want || (n > 0 && !(sum > 0 && sum < 10)) {
			t.Errorf("lake_read_request_duration_seconds{endpoint=%q}: %d samples summing to %v s, want %d", ep, n, sum, want)
		}
	}
	for src, want := range map[string]float64{SourceModel: 1, SourceRecent: 1, SourceTrending: 1, SourcePopular: 0} {
		if got := testutil.ToFloat64(m.read.sources.WithLabelValues(src)); got != want {
			t.Errorf("lake_read_recommendation_source_total{source=%q} = %v, want %v", src, got, want)
		}
	}

	// The exposition: the served versions (each fixture table is at version 1) and the series
	// that exist before any request.
	w := h.do(t, "GET", "/metrics", "", nil)
	body := w.Body.String()
	for _, want := range []string{
		`lake_read_served_version{table="similar_items"} 1`,
		`lake_read_served_version{table="user_recommendations"} 1`,
		`lake_read_served_version{table="trending"} 1`,
		`lake_read_served_version{table="popular"} 1`,
		`lake_read_requests_total{code="2xx",endpoint="similar"} 2`,
		`lake_read_requests_total{code="5xx",endpoint="models"} 0`,
		`lake_read_request_duration_seconds_bucket{endpoint="similar",le="1"} 4`,
		`lake_read_recommendation_source_total{source="popular"} 0`,
		`lake_read_swaps_total{table="trending"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no line %q in\n%s", want, grepLines(body, "lake_read_served"))
		}
	}
}

// Refusals before the handler (token, no outputs) count as the endpoint's 4xx and 5xx.
func TestReadMetricsRefused(t *testing.T) {
	f := newFixture(t)
	m := NewMetrics()
	h := newHarness(t, &Options{Reads: f.outputs(t, nil), Metrics: m, ReadToken: "s3cret", RateLimit: -1})
	h.do(t, "GET", "/v1/trending", "", nil)
	h.do(t, "GET", "/v1/trending", "", map[string]string{"Authorization": "Bearer s3cret"})
	if got := testutil.ToFloat64(m.read.requests.WithLabelValues("trending", "4xx")); got != 1 {
		t.Errorf("trending 4xx = %v, want 1 (the request without the token)", got)
	}
	if got := testutil.ToFloat64(m.read.requests.WithLabelValues("trending", "2xx")); got != 1 {
		t.Errorf("trending 2xx = %v, want 1", got)
	}

	m2 := NewMetrics()
	h2 := newHarness(t, &Options{Metrics: m2, RateLimit: -1}) // no outputs: 503
	h2.do(t, "GET", "/v1/users/u1/recommendations", "", nil)
	if got := testutil.ToFloat64(m2.read.requests.WithLabelValues("recommendations", "5xx")); got != 1 {
		t.Errorf("recommendations 5xx = %v, want 1", got)
	}
	if w := h2.do(t, "GET", "/metrics", "", nil); strings.Contains(w.Body.String(), "lake_read_served_version{") {
		t.Errorf("a server without outputs reports served versions")
	}
}

// ObserveSwap counts every swap and times only a newer version replacing an older one.
func TestReadMetricsSwap(t *testing.T) {
	m := NewMetrics()
	now := time.Now()
	for _, o := range []SwapObservation{
		{Table: OutSimilar, Version: 3, Previous: -1, Committed: now.Add(-time.Hour), Served: now}, // first load
		{Table: OutSimilar, Version: 4, Previous: 3, Committed: now.Add(-2 * time.Second), Served: now},
		{Table: OutSimilar, Version: 3, Previous: 4, Committed: now.Add(-time.Hour), Served: now}, // rollback
		{Table: OutTrend, Version: 9, Previous: 8, Committed: now.Add(time.Second), Served: now},  // clock skew
	} {
		m.ObserveSwap(o)
	}
	if got := testutil.ToFloat64(m.read.swaps.WithLabelValues(OutSimilar)); got != 3 {
		t.Errorf("swaps of similar_items = %v, want 3", got)
	}
	if n, sum := histogram(t, m, "lake_read_swap_delay_seconds", "table", OutSimilar); n != 1 || sum < 1.99 || sum > 2.01 {
		t.Errorf("swap delay of similar_items: %d samples summing to %v s, want 1 of 2 s", n, sum)
	}
	if n, sum := histogram(t, m, "lake_read_swap_delay_seconds", "table", OutTrend); n != 1 || sum != 0 {
		t.Errorf("swap delay of trending: %d samples summing to %v s, want 1 of 0 s", n, sum)
	}
}

func TestEndpointOf(t *testing.T) {
	for path, want := range map[string]int{
		"/v1/items/a%2Fb/similar": epSimilar, "/v1/users/u/recommendations": epRecs, "/v1/trending": epTrending,
		"/v1/popular": epPopular, "/v1/models": epModels, "/p.gif": -1, "/v1/events": -1, "/metrics": -1,
	} {
		if got := endpointOf(path); got != want {
			t.Errorf("endpointOf(%q) = %d, want %d", path, got, want)
		}
	}
}

func grepLines(s, substr string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// GET /v1/models is metered once server.go wraps it in metered (as the other reads are): the
// wrapper names the endpoint by the path.
func TestReadMetricsModels(t *testing.T) {
	m := NewMetrics()
	srv, err := New(nopSender{}, &Options{Metrics: m, RateLimit: -1,
		Models: func(context.Context) (any, error) { return map[string]any{"live": map[string]any{}}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.metered(srv.handleModels)
	for range 2 {
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest("GET", "/v1/models", nil))
		if w.Code != 200 {
			t.Fatalf("GET /v1/models: %d %s", w.Code, w.Body)
		}
	}
	if got := testutil.ToFloat64(m.read.requests.WithLabelValues("models", "2xx")); got != 2 {
		t.Errorf("models 2xx = %v, want 2", got)
	}
	if n, _ := histogram(t, m, "lake_read_request_duration_seconds", "endpoint", "models"); n != 2 {
		t.Errorf("models latency samples = %d, want 2", n)
	}
}

// Outputs reports each swap through OnSwap: the first load of every table counts as a swap, with
// no delay recorded.
func TestOutputsOnSwap(t *testing.T) {
	f := newFixture(t)
	m := NewMetrics()
	f.outputs(t, &OutputsOptions{OnSwap: m.ObserveSwap})
	for _, name := range []string{OutSimilar, OutRecs} {
		if got := testutil.ToFloat64(m.read.swaps.WithLabelValues(name)); got != 1 {
			t.Errorf("swaps of %s after the first load = %v, want 1", name, got)
		}
	}
	if n, _ := histogram(t, m, "lake_read_swap_delay_seconds", "table", OutSimilar); n != 0 {
		t.Errorf("the first load recorded %d delays", n)
	}
}
