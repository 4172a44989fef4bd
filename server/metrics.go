package server

import (
	"net/http"
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
