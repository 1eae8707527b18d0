// Package floor is the plainest server that does headcount's job: Echo and
// one r3labs/sse stream that every GET /events joins, no sign-in, and
// POST /publish (form fields id and data) sending one "user count" event to
// everyone. It is what the load generator measures headcount against (the
// cost of r3labs and Echo themselves, with nothing of headcount's around
// them), run as the bench/floor command. It counts nothing by itself: the
// load generator publishes every count.
//
// It serves /metrics with the names headcount uses for the same numbers,
// so one load generator reads both.
package floor

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/r3labs/sse/v2"
)

// streamID is the one r3labs stream.
const streamID = "events"

// floor is the server's state: the r3labs server and the numbers /metrics shows.
type floor struct {
	sse         *sse.Server
	subscribers atomic.Int64
	opened      atomic.Uint64
	published   atomic.Uint64
	eventsSent  atomic.Uint64 // subscribers at each publish: what r3labs was asked to write
	last        atomic.Int64  // data of the latest event
}

// Serve serves the floor on ln until ctx ends, then ends every stream and
// shuts down within five seconds.
func Serve(ctx context.Context, ln net.Listener) error {
	f := &floor{sse: sse.New()}
	f.sse.AutoReplay = false
	f.sse.AutoStream = false
	f.sse.CreateStream(streamID)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/events", f.events)
	e.POST("/publish", f.publish)
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(f.registry(), promhttp.HandlerOpts{})))

	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// Streams never go idle: end them before Shutdown waits for idle connections.
	f.sse.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// events is GET /events: r3labs serves the one stream.
func (f *floor) events(c echo.Context) error {
	r := c.Request()
	r.URL.RawQuery = "stream=" + streamID
	f.subscribers.Add(1)
	f.opened.Add(1)
	defer f.subscribers.Add(-1)
	f.sse.ServeHTTP(c.Response(), r)
	return nil
}

// publish is POST /publish: id and data become one event for everyone.
func (f *floor) publish(c echo.Context) error {
	id, data := c.FormValue("id"), c.FormValue("data")
	n, err := strconv.ParseInt(data, 10, 64)
	if id == "" || err != nil {
		return c.String(http.StatusBadRequest, "want form fields id and data (a number)\n")
	}
	f.last.Store(n)
	f.published.Add(1)
	f.eventsSent.Add(uint64(f.subscribers.Load()))
	f.sse.Publish(streamID, &sse.Event{ID: []byte(id), Event: []byte("user count"), Data: []byte(data)})
	return c.NoContent(http.StatusNoContent)
}

// registry holds the Go and process collectors and the floor's numbers
// under headcount's metric names.
func (f *floor) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	gauge := func(name string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: name}, v)
	}
	counter := func(name string, v func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: name}, v)
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("headcount_subscribers", func() float64 { return float64(f.subscribers.Load()) }),
		gauge("headcount_user_count", func() float64 { return float64(f.last.Load()) }),
		counter("headcount_streams_opened_total", func() float64 { return float64(f.opened.Load()) }),
		counter("headcount_count_changes_total", func() float64 { return float64(f.published.Load()) }),
		counter("headcount_events_sent_total", func() float64 { return float64(f.eventsSent.Load()) }),
	)
	return reg
}
