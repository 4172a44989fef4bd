package server

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the collector's and committers' Prometheus metrics, in a registry of their own
// (never the global one, so two servers in one process do not collide).
//
//	lake_collector_events_accepted_total              events queued
//	lake_collector_events_rejected_total{reason}      events (or requests) refused: bad_event, bad_body,
//	                                                  too_large, unauthorized, rate_limited, queue_unavailable
//	lake_committer_events_committed_total{committer}  rows committed to the table
//	lake_committer_events_quarantined_total{committer} rows committed to the quarantine table
//	lake_committer_events_duplicate_total{committer}  redelivered or repeated events dropped
//	lake_committer_commits_total{committer}           batches committed
//	lake_committer_queue_lag_seconds{committer}       at the last commit, how long its oldest event had waited since the collector received it
//	lake_committer_table_version{committer}           the table version of the last commit
//
// and the read APIs' (see readMetrics for the hot path):
//
//	lake_read_requests_total{endpoint,code}           answers by endpoint (similar, recommendations, trending,
//	                                                  popular, models) and status class (2xx, 4xx, 5xx); a read
//	                                                  refused by the rate limit counts in the collector's rejected
//	lake_read_request_duration_seconds{endpoint}      time in the handler, from the token check to the last byte
//	                                                  written (not the network, nor net/http's parsing)
//	lake_read_recommendation_source_total{source}     recommendations answered from model, recent, trending, popular
//	lake_read_served_version{table}                   the version of each output table being served (read at
//	                                                  scrape time; absent until the table is loaded)
//	lake_read_swaps_total{table}                      versions swapped in, the first load included (ObserveSwap)
//	lake_read_swap_delay_seconds{table}               from a version's commit (its commit timestamp) to the swap
//	                                                  that serves it, for a newer version replacing an older one
//	                                                  (ObserveSwap; the first load and rollbacks are left out)
type Metrics struct {
	reg         *prometheus.Registry
	acceptedC   prometheus.Counter
	rejectedC   *prometheus.CounterVec
	committed   *prometheus.CounterVec
	quarantined *prometheus.CounterVec
	duplicate   *prometheus.CounterVec
	commits     *prometheus.CounterVec
	lag         *prometheus.GaugeVec
	version     *prometheus.GaugeVec
	read        readMetrics
}

// NewMetrics returns a new set of metrics in a new registry (with the Go and process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		acceptedC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lake_collector_events_accepted_total", Help: "Events the collector queued.",
		}),
		rejectedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lake_collector_events_rejected_total", Help: "Events or requests the collector refused, by reason.",
		}, []string{"reason"}),
		committed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lake_committer_events_committed_total", Help: "Rows committed to the table.",
		}, []string{"committer"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lake_committer_events_quarantined_total", Help: "Rows committed to the quarantine table.",
		}, []string{"committer"}),
		duplicate: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lake_committer_events_duplicate_total", Help: "Redelivered or repeated events dropped by event_id.",
		}, []string{"committer"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lake_committer_commits_total", Help: "Batches committed.",
		}, []string{"committer"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lake_committer_queue_lag_seconds", Help: "At the last commit: the age of its oldest event since the collector received it.",
		}, []string{"committer"}),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lake_committer_table_version", Help: "The table version of the committer's last commit.",
		}, []string{"committer"}),
	}
	m.reg.MustRegister(m.acceptedC, m.rejectedC, m.committed, m.quarantined, m.duplicate, m.commits, m.lag, m.version,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.read.init(m.reg)
	for _, r := range []string{"bad_event", "bad_body", "too_large", "unauthorized", "rate_limited", "queue_unavailable"} {
		m.rejectedC.WithLabelValues(r)
	}
	return m
}

// Registry is the registry the metrics live in (to add more collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *Metrics) accepted(n int) { m.acceptedC.Add(float64(n)) }

func (m *Metrics) rejected(reason string, n int) { m.rejectedC.WithLabelValues(reason).Add(float64(n)) }

// CommitObservation is what a committer reports after each committed batch.
type CommitObservation struct {
	Committer   string
	Version     int64 // table version of the commit, -1 when nothing was committed
	Committed   int64
	Quarantined int64
	Duplicate   int64
	Lag         time.Duration // the age of the batch's oldest event at the commit
}

// ObserveCommit records a committer's batch.
func (m *Metrics) ObserveCommit(o CommitObservation) {
	m.committed.WithLabelValues(o.Committer).Add(float64(o.Committed))
	m.quarantined.WithLabelValues(o.Committer).Add(float64(o.Quarantined))
	m.duplicate.WithLabelValues(o.Committer).Add(float64(o.Duplicate))
	if o.Version >= 0 {
		m.commits.WithLabelValues(o.Committer).Inc()
		m.version.WithLabelValues(o.Committer).Set(float64(o.Version))
	}
	m.lag.WithLabelValues(o.Committer).Set(o.Lag.Seconds())
}

// The read endpoints, the index of their metrics.
const (
	epSimilar = iota
	epRecs
	epTrending
	epPopular
	epModels
	numEndpoints
)

var endpointNames = [numEndpoints]string{"similar", "recommendations", "trending", "popular", "models"}

// endpointOf names the read endpoint of a request path (-1: not a read).
func endpointOf(path string) int {
	switch {
	case strings.HasPrefix(path, "/v1/items/"):
		return epSimilar
	case strings.HasPrefix(path, "/v1/users/"):
		return epRecs
	case path == "/v1/trending":
		return epTrending
	case path == "/v1/popular":
		return epPopular
	case path == "/v1/models":
		return epModels
	}
	return -1
}

// The output tables and recommendation sources, the index of their metrics.
var (
	outputNames = [...]string{OutSimilar, OutRecs, OutTrend, OutPopular}
	sourceNames = [...]string{SourceModel, SourceRecent, SourceTrending, SourcePopular}
)

// readLatencyBuckets are the bounds (seconds) of lake_read_request_duration_seconds: an
// in-memory answer takes tens of microseconds, the recent fallback reads files (milliseconds),
// and anything near a second is a fault.
var readLatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// swapDelayBuckets are the bounds (seconds) of lake_read_swap_delay_seconds: a poll (3 s by
// default) plus a load, up to a registry promotion made by hand minutes later.
var swapDelayBuckets = []float64{0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 30, 60, 120, 300, 600}

// readMetrics are the read APIs' metrics. The children a request touches are resolved once, at
// construction, into arrays indexed by endpoint, status class and source, so a request costs a
// few atomic adds and no label lookups.
type readMetrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	sources   *prometheus.CounterVec
	swaps     *prometheus.CounterVec
	swapDelay *prometheus.HistogramVec

	codes   [numEndpoints][6]prometheus.Counter // by status/100; nil: resolved on first use
	latency [numEndpoints]prometheus.Observer
	source  [len(sourceNames)]prometheus.Counter

	outputs atomic.Pointer[Outputs] // the outputs whose served versions are reported (the first bound)
}

func (rm *readMetrics) init(reg *prometheus.Registry) {
	rm.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lake_read_requests_total", Help: "Read API answers by endpoint and status class (2xx, 4xx, 5xx).",
	}, []string{"endpoint", "code"})
	rm.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "lake_read_request_duration_seconds", Help: "Time a read API request spends in its handler.",
		Buckets: readLatencyBuckets,
	}, []string{"endpoint"})
	rm.sources = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lake_read_recommendation_source_total", Help: "Recommendations answered, by source: model, recent, trending, popular.",
	}, []string{"source"})
	rm.swaps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lake_read_swaps_total", Help: "Versions of an output table swapped in to serve, the first load included.",
	}, []string{"table"})
	rm.swapDelay = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "lake_read_swap_delay_seconds", Help: "From the commit of an output table version to the swap that serves it (newer versions only).",
		Buckets: swapDelayBuckets,
	}, []string{"table"})
	reg.MustRegister(rm.requests, rm.duration, rm.sources, rm.swaps, rm.swapDelay, servedCollector{rm})
	for ep, name := range endpointNames {
		for _, class := range []int{2, 4, 5} {
			rm.codes[ep][class] = rm.requests.WithLabelValues(name, strconv.Itoa(class)+"xx")
		}
		rm.latency[ep] = rm.duration.WithLabelValues(name)
	}
	for i, name := range sourceNames {
		rm.source[i] = rm.sources.WithLabelValues(name)
	}
	for _, name := range outputNames {
		rm.swaps.WithLabelValues(name)
	}
}

// observe records one answer of endpoint ep.
func (rm *readMetrics) observe(ep, status int, d time.Duration) {
	class := min(max(status/100, 1), 5)
	c := rm.codes[ep][class]
	if c == nil { // 1xx or 3xx: no read answers those
		c = rm.requests.WithLabelValues(endpointNames[ep], strconv.Itoa(class)+"xx")
	}
	c.Inc()
	rm.latency[ep].Observe(d.Seconds())
}

// answeredFrom counts a recommendation answered from source.
func (rm *readMetrics) answeredFrom(source string) {
	for i, name := range sourceNames {
		if name == source {
			rm.source[i].Inc()
			return
		}
	}
}

// bindOutputs reports o's served versions in lake_read_served_version. Only the first Outputs
// bound is reported (one Metrics normally serves one server).
func (m *Metrics) bindOutputs(o *Outputs) {
	if o != nil {
		m.read.outputs.CompareAndSwap(nil, o)
	}
}

// servedCollector reads lake_read_served_version at scrape time from the bound Outputs, so the
// gauge is right without any hook in the load path.
type servedCollector struct{ rm *readMetrics }

var servedDesc = prometheus.NewDesc("lake_read_served_version", "The version of each output table being served.", []string{"table"}, nil)

func (c servedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- servedDesc }

func (c servedCollector) Collect(ch chan<- prometheus.Metric) {
	o := c.rm.outputs.Load()
	if o == nil {
		return
	}
	for name, v := range o.Versions() {
		ch <- prometheus.MustNewConstMetric(servedDesc, prometheus.GaugeValue, float64(v), name)
	}
}

// SwapObservation is what the loader of the job outputs reports after it swaps in a version of
// an output table (see Metrics.ObserveSwap).
type SwapObservation struct {
	Table     string    // OutSimilar, OutRecs, OutTrend or OutPopular
	Version   int64     // the version now served
	Previous  int64     // the version served before; -1 for the first load
	Committed time.Time // the version's commit time (txlog.Snapshot.Timestamp)
	Served    time.Time // the moment of the swap
}

// ObserveSwap records a swap: one more lake_read_swaps_total and, when a newer version replaces
// an older one, its delay since the commit in lake_read_swap_delay_seconds. The first load (the
// commit may be days old) and a rollback to an older version count as swaps but not as delays.
func (m *Metrics) ObserveSwap(o SwapObservation) {
	m.read.swaps.WithLabelValues(o.Table).Inc()
	if o.Previous < 0 || o.Version <= o.Previous || o.Committed.IsZero() {
		return
	}
	m.read.swapDelay.WithLabelValues(o.Table).Observe(max(o.Served.Sub(o.Committed).Seconds(), 0))
}

// statusWriter remembers the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// metered records the status class and the latency of each answer of a read endpoint (named by
// the request path) in the read metrics; other paths pass through unrecorded.
func (s *Server) metered(h http.HandlerFunc) http.HandlerFunc {
	rm := &s.opts.Metrics.read
	s.opts.Metrics.bindOutputs(s.opts.Reads)
	return func(w http.ResponseWriter, r *http.Request) {
		ep := endpointOf(r.URL.Path)
		if ep < 0 {
			h(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		rm.observe(ep, sw.status, time.Since(start))
	}
}
