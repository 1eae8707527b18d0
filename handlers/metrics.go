package handlers

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/headcount/headcount/stream"
)

// metrics are the service's Prometheus metrics. Stream numbers are read
// from the hub at scrape time, so the hot path only bumps atomics.
type metrics struct {
	authFailures   *prometheus.CounterVec
	signinFailures *prometheus.CounterVec
}

// newMetrics registers every metric on reg, which is the server's own
// registry rather than the package-global default.
func newMetrics(reg *prometheus.Registry, hub *stream.Hub) *metrics {
	m := &metrics{
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headcount_auth_failures_total",
			Help: "Requests refused for want of a valid credential, by reason.",
		}, []string{"reason"}),
		signinFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headcount_signin_failures_total",
			Help: "Sign-in callbacks that started no session, by reason.",
		}, []string{"reason"}),
	}
	stat := func(f func(stream.Stats) float64) func() float64 {
		return func() float64 { return f(hub.Stats()) }
	}
	refused := func(reason string, f func(stream.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "headcount_streams_refused_total",
			Help:        "Streams refused before they started, by reason.",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, stat(func(s stream.Stats) float64 { return float64(f(s)) }))
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.authFailures,
		m.signinFailures,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "headcount_subscribers",
			Help: "Streams open on this instance.",
		}, stat(func(s stream.Stats) float64 { return float64(s.Subscribers) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "headcount_user_count",
			Help: "The global count last sent to subscribers (all instances sharing a count store).",
		}, stat(func(s stream.Stats) float64 { return float64(s.Global) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "headcount_streams_opened_total",
			Help: "Streams accepted.",
		}, stat(func(s stream.Stats) float64 { return float64(s.Opened) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "headcount_streams_closed_total",
			Help: "Accepted streams that have ended, for any reason.",
		}, stat(func(s stream.Stats) float64 { return float64(s.Closed) })),
		refused("user_limit", func(s stream.Stats) uint64 { return s.RefusedUserLimit }),
		refused("instance_limit", func(s stream.Stats) uint64 { return s.RefusedInstanceLimit }),
		refused("shutting_down", func(s stream.Stats) uint64 { return s.RefusedClosed }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "headcount_count_changes_total",
			Help: "Changes of the count broadcast (the event id).",
		}, stat(func(s stream.Stats) float64 { return float64(s.Broadcasts) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "headcount_events_sent_total",
			Help: "Events (counts and heartbeats) written and flushed to subscribers.",
		}, stat(func(s stream.Stats) float64 { return float64(s.EventsSent) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "headcount_heartbeat_write_failures_total",
			Help: "Heartbeat comments whose write failed (the client was gone or stuck).",
		}, stat(func(s stream.Stats) float64 { return float64(s.HeartbeatFailures) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "headcount_events_skipped_total",
			Help: "Events not queued because a subscriber was not reading; counts are sent again later.",
		}, stat(func(s stream.Stats) float64 { return float64(s.Skipped) })),
	)
	return m
}
