package handlers

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/headcount/headcount/stream"
)

// Metrics are the service's Prometheus metrics: the ones handlers bump
// themselves, the hub's numbers (read from one snapshot per scrape) and the
// Go runtime's and process's, on a registry of their own rather than the
// package-global default.
type Metrics struct {
	registry       *prometheus.Registry
	authFailures   *prometheus.CounterVec
	signinFailures *prometheus.CounterVec
}

// NewMetrics registers every metric, the numbers of hub included.
func NewMetrics(hub *stream.Hub) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		registry: reg,
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headcount_auth_failures_total",
			Help: "Requests refused for want of a valid credential, by reason.",
		}, []string{"reason"}),
		signinFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headcount_signin_failures_total",
			Help: "Sign-in callbacks that started no session, by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.authFailures,
		m.signinFailures,
		newHubCollector(hub),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "headcount_ready",
			Help: "1 while /readyz answers 200 (the hub takes streams and the count store answers), else 0.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
			defer cancel()
			if hub.Ready(ctx) != nil {
				return 0
			}
			return 1
		}),
	)
	return m
}

// ConnCounts is what the cap on connections that hold no stream knows
// (connlimit.Listener).
type ConnCounts interface {
	// Other is how many open connections hold no stream.
	Other() int64
	// Refused is how many connections were closed on arrival, the cap
	// being reached.
	Refused() int64
}

// WatchConnections adds the connection cap's numbers: the open
// connections that hold no stream, which the cap counts, and those it
// closed on arrival.
func (m *Metrics) WatchConnections(c ConnCounts) {
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "headcount_connections_without_stream",
			Help: "Open connections that hold no stream: what the cap on them counts.",
		}, func() float64 { return float64(c.Other()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "headcount_connections_refused_total",
			Help: "Connections closed on arrival because the cap on connections that hold no stream was reached.",
		}, func() float64 { return float64(c.Refused()) }),
	)
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// hubMetric is one number of stream.Stats as a Prometheus metric.
type hubMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	label string // the "reason" label's value, for refusals
	value func(stream.Stats) float64
}

// hubCollector reads the hub's numbers once per scrape, so the hot path
// only bumps atomics and every metric of a scrape comes from one snapshot.
type hubCollector struct {
	hub     *stream.Hub
	metrics []hubMetric
}

func newHubCollector(hub *stream.Hub) *hubCollector {
	gauge := func(name, help string, v func(stream.Stats) float64) hubMetric {
		return hubMetric{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.GaugeValue, value: v}
	}
	counter := func(name, help string, v func(stream.Stats) uint64) hubMetric {
		return hubMetric{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.CounterValue,
			value: func(s stream.Stats) float64 { return float64(v(s)) }}
	}
	refused := prometheus.NewDesc("headcount_streams_refused_total", "Streams refused before they started, by reason.", []string{"reason"}, nil)
	refusal := func(reason string, v func(stream.Stats) uint64) hubMetric {
		return hubMetric{desc: refused, kind: prometheus.CounterValue, label: reason,
			value: func(s stream.Stats) float64 { return float64(v(s)) }}
	}
	return &hubCollector{hub: hub, metrics: []hubMetric{
		gauge("headcount_subscribers", "Streams open on this instance.",
			func(s stream.Stats) float64 { return float64(s.Subscribers) }),
		gauge("headcount_user_count", "The global count last sent to subscribers (all instances sharing a count store).",
			func(s stream.Stats) float64 { return float64(s.Global) }),
		gauge("headcount_count_partial", "1 while the shared count is unavailable (Redis unreachable or refusing writes) and headcount_user_count is this instance's best knowledge.",
			func(s stream.Stats) float64 {
				if s.Partial {
					return 1
				}
				return 0
			}),
		counter("headcount_streams_opened_total", "Streams accepted.",
			func(s stream.Stats) uint64 { return s.Opened }),
		counter("headcount_streams_closed_total", "Accepted streams that have ended, for any reason.",
			func(s stream.Stats) uint64 { return s.Closed }),
		refusal("user_limit", func(s stream.Stats) uint64 { return s.RefusedUserLimit }),
		refusal("instance_limit", func(s stream.Stats) uint64 { return s.RefusedInstanceLimit }),
		refusal("shutting_down", func(s stream.Stats) uint64 { return s.RefusedClosed }),
		counter("headcount_count_changes_total", "New values of the count published to subscribers (each once).",
			func(s stream.Stats) uint64 { return s.Broadcasts }),
		counter("headcount_events_sent_total", "Events (counts and heartbeats) written and flushed to subscribers.",
			func(s stream.Stats) uint64 { return s.EventsSent }),
		counter("headcount_heartbeat_write_failures_total", "Heartbeat comments whose write failed (the client was gone or stuck).",
			func(s stream.Stats) uint64 { return s.HeartbeatFailures }),
		counter("headcount_events_skipped_total", "Events the shared stream refused because its queue was full (the fan-out stalled, everyone was late); counts are sent again later.",
			func(s stream.Stats) uint64 { return s.Skipped }),
		counter("headcount_streams_dropped_behind_total", "Streams ended because they fell too many events behind (the client stopped reading, or reads slower than the events come).",
			func(s stream.Stats) uint64 { return s.DroppedBehind }),
	}}
}

// Describe sends every metric's description (the refusal one once).
func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) {
	seen := map[*prometheus.Desc]bool{}
	for _, m := range c.metrics {
		if !seen[m.desc] {
			seen[m.desc] = true
			ch <- m.desc
		}
	}
}

// Collect sends every metric from one snapshot of the hub.
func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.hub.Stats()
	for _, m := range c.metrics {
		var labels []string
		if m.label != "" {
			labels = []string{m.label}
		}
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s), labels...)
	}
}
