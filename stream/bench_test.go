package stream

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkBroadcast measures one change of the global count fanned out to
// N subscribers: from the Counter signalling the change until every
// subscriber has written and flushed the event. The subscribers are served
// by the real Hub.Serve and r3labs; only the connection is replaced by an
// in-memory flushable writer, so kernel and loopback costs are left out.
//
// go test -run '^$' -bench Broadcast -benchmem ./stream/ on the team's
// machine (2 cores, AMD EPYC, go1.26.8, other work running, load ~5):
//
//	subscribers=100     420710 ns/op   4207 ns/subscriber    7859 B/op    318 allocs/op
//	subscribers=1000   6578750 ns/op   6579 ns/subscriber   74930 B/op   3063 allocs/op
//	subscribers=10000 63959752 ns/op   6396 ns/subscriber  735256 B/op  30016 allocs/op
//
// The 3 allocations per subscriber are r3labs' fmt.Fprintf calls.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			benchmarkBroadcast(b, n)
		})
	}
}

func benchmarkBroadcast(b *testing.B, n int) {
	counter := newOffsetCounter()
	h := NewHub(Config{Counter: counter, Heartbeat: time.Hour, Coalesce: -1})
	var (
		flushed atomic.Int64 // events flushed by all subscribers
		target  atomic.Int64 // the total that completes the current broadcast
		reached = make(chan struct{}, 1)
		served  sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	target.Store(-1)
	onFlush := func() {
		if flushed.Add(1) == target.Load() {
			select {
			case reached <- struct{}{}:
			default:
			}
		}
	}

	// Each subscriber flushes its response head, then one event per count.
	for i := range n {
		w := &benchWriter{header: http.Header{}, onFlush: onFlush}
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/events", nil)
		served.Go(func() {
			if err := h.Serve(w, r, fmt.Sprintf("user%d", i)); err != nil {
				b.Error(err)
			}
		})
	}
	// Heads plus at least one count event each; the count settles at n.
	deadline := time.Now().Add(time.Minute)
	for h.Count() != n || flushed.Load() < int64(2*n) {
		if time.Now().After(deadline) {
			b.Fatalf("setup: count %d, %d flushes", h.Count(), flushed.Load())
		}
		time.Sleep(time.Millisecond) // setup poll, bounded by the deadline
	}
	waitQuiet(&flushed)

	watchdog := time.NewTimer(time.Minute)
	defer watchdog.Stop()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		want := flushed.Load() + int64(n)
		target.Store(want)
		watchdog.Reset(time.Minute)
		counter.bump()
		// A signal left from an earlier round only causes another look.
		for flushed.Load() < want {
			select {
			case <-reached:
			case <-watchdog.C:
				b.Fatalf("only %d of %d events flushed", flushed.Load(), want)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/subscriber")

	cancel()
	served.Wait()
	if err := h.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// waitQuiet returns once n has stopped moving for a few milliseconds
// (bounded to a second).
func waitQuiet(n *atomic.Int64) {
	last := n.Load()
	for range 100 {
		time.Sleep(10 * time.Millisecond) // a settle interval; the loop is bounded
		now := n.Load()
		if now == last {
			return
		}
		last = now
	}
}

// benchWriter is an in-memory ResponseWriter that can flush and takes
// write deadlines, as a connection does.
type benchWriter struct {
	header   http.Header
	onFlush  func()
	deadline time.Time
}

func (w *benchWriter) SetWriteDeadline(t time.Time) error {
	w.deadline = t
	return nil
}

func (w *benchWriter) Header() http.Header         { return w.header }
func (w *benchWriter) WriteHeader(int)             {}
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) Flush()                      { w.onFlush() }
