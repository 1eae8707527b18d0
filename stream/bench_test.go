package stream

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkBroadcast measures one change of the global count fanned out to
// N subscribers: from the Counter signalling the change until every
// subscriber has written and flushed the event. The subscribers are served
// by the real Hub.Serve and r3labs; only the connection is replaced by an
// in-memory flushable writer, so kernel and loopback costs are left out.
//
// ns/subscriber is wall time, which with few subscribers is mostly the
// broadcaster's own wake-ups; the fan-out's own cost is
// cpu-ns/subscriber, the process's CPU time per subscriber per
// broadcast. docs/benchmarks.md has the figures.
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
		serveIn(ctx, b, &served, h, w, testPerson(fmt.Sprintf("user%d", i)))
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
	cpu0 := cpuSince(0)
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
	// With few subscribers the wall time is the broadcaster's wake-ups;
	// the CPU time is the fan-out's.
	b.ReportMetric(float64(cpuSince(cpu0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/subscriber")

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

// BenchmarkJoin measures a burst: burst streams join at once, and the op
// ends when every one of them shows the exact count (the burst). The
// streams then leave, outside the timer. Coalescing is the hub's default,
// as in production, so the figure includes the merging of the burst's
// changes into a few broadcasts.
//
// go test -run '^$' -bench 'Join|Leave' -benchmem ./stream/
func BenchmarkJoin(b *testing.B) {
	for _, n := range []int{100, 1_000} {
		b.Run(fmt.Sprintf("burst=%d", n), func(b *testing.B) {
			h := NewHub(Config{Heartbeat: time.Hour})
			defer closeBenchHub(b, h)
			b.ReportAllocs()
			for range b.N {
				g := joinGroup(b, h, n)
				waitShowing(b, g.writers, n)
				b.StopTimer()
				g.leave(b)
				waitCount(b, h, 0)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/join")
		})
	}
}

// BenchmarkLeave measures the opposite burst: with one watcher and burst
// other streams open, the burst leaves at once, and the op ends when the
// watcher shows 1 and every Serve has returned.
func BenchmarkLeave(b *testing.B) {
	for _, n := range []int{100, 1_000} {
		b.Run(fmt.Sprintf("burst=%d", n), func(b *testing.B) {
			h := NewHub(Config{Heartbeat: time.Hour})
			defer closeBenchHub(b, h)
			watcher := joinGroup(b, h, 1)
			defer watcher.leave(b)
			b.ReportAllocs()
			b.StopTimer()
			for range b.N {
				g := joinGroup(b, h, n)
				waitShowing(b, append(g.writers, watcher.writers...), n+1)
				b.StartTimer()
				g.leave(b)
				waitShowing(b, watcher.writers, 1)
				b.StopTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/leave")
		})
	}
}

// group is a set of streams served by one hub with in-memory writers.
type group struct {
	cancel  context.CancelFunc
	served  sync.WaitGroup
	writers []*countWriter
}

// joinGroup starts n streams on h at once.
func joinGroup(b *testing.B, h *Hub, n int) *group {
	ctx, cancel := context.WithCancel(context.Background())
	g := &group{cancel: cancel}
	for i := range n {
		w := &countWriter{benchWriter: benchWriter{header: http.Header{}, onFlush: func() {}}}
		g.writers = append(g.writers, w)
		serveIn(ctx, b, &g.served, h, w, testPerson(fmt.Sprintf("user%d", i)))
	}
	return g
}

// joinPerson starts one stream on h held by the person id.
func joinPerson(b *testing.B, h *Hub, id string) *group {
	ctx, cancel := context.WithCancel(context.Background())
	g := &group{cancel: cancel}
	w := &countWriter{benchWriter: benchWriter{header: http.Header{}, onFlush: func() {}}}
	g.writers = append(g.writers, w)
	serveIn(ctx, b, &g.served, h, w, testPerson(id))
	return g
}

// leave ends every stream of g and waits for their Serve calls to return.
func (g *group) leave(b *testing.B) {
	g.cancel()
	g.served.Wait()
}

// waitShowing waits (at most a minute) until every writer's latest count is n.
func waitShowing(b *testing.B, ws []*countWriter, n int) {
	deadline := time.Now().Add(time.Minute)
	for _, w := range ws {
		for w.latest.Load() != int64(n) {
			if time.Now().After(deadline) {
				shows := map[int64]int{}
				for _, w := range ws {
					shows[w.latest.Load()]++
				}
				b.Fatalf("a stream shows %d, want %d (all: %v)", w.latest.Load(), n, shows)
			}
			time.Sleep(100 * time.Microsecond) // a poll bounded by the deadline
		}
	}
}

// waitCount waits (at most a minute) until h holds n streams.
func waitCount(b *testing.B, h *Hub, n int) {
	deadline := time.Now().Add(time.Minute)
	for h.Stats().Subscribers != int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("the hub holds %d streams, want %d", h.Stats().Subscribers, n)
		}
		time.Sleep(100 * time.Microsecond) // a poll bounded by the deadline
	}
}

// closeBenchHub closes h within a minute.
func closeBenchHub(b *testing.B, h *Hub) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

// countWriter is a benchWriter that keeps the latest user count written to it.
type countWriter struct {
	benchWriter
	latest atomic.Int64
	data   string // the first data line of the event being written
}

// Write notes the user count. r3labs writes each field with one Fprintf,
// a cycle's later events ride in the data of its first (cycleEvent), and
// a newcomer's first events come whole in one piece (withNewcomers); in
// all of them a part's data comes before its name, so the count is the
// data line before an "event: user count" line.
func (w *countWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(string(p), "\n") {
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			w.data = v
		} else if line == "event: "+countEventName {
			w.note()
		}
	}
	return len(p), nil
}

// note takes the noted data as the latest count.
func (w *countWriter) note() {
	if n, err := strconv.Atoi(w.data); err == nil {
		w.latest.Store(int64(n))
	}
}

// cpuSince is the process's CPU time (user and system) since start, a
// value cpuSince(0) returned earlier.
func cpuSince(start time.Duration) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) - start
}

// BenchmarkPresenceFanOut measures what presence costs the user count:
// 10,000 streams held by 1,000 people, and a person of their own joins;
// the op ends when every stream has written the new user count. With
// presence=names that join also sends the people count and a user event
// to everyone, with presence=count only the people count. The person then
// leaves, outside the timer, and every event of that is written before the
// next join.
//
// go test -run '^$' -bench PresenceFanOut -count 6 ./stream/
func BenchmarkPresenceFanOut(b *testing.B) {
	const n, people = 10_000, 1_000
	for _, mode := range []string{"names", "count"} {
		b.Run("presence="+mode, func(b *testing.B) {
			h := NewHub(Config{Heartbeat: time.Hour, CountOnly: mode == "count", LeaveGrace: -1})
			defer closeBenchHub(b, h)
			ctx, cancel := context.WithCancel(context.Background())
			var served sync.WaitGroup
			defer func() {
				cancel()
				served.Wait()
			}()
			writers := make([]*countWriter, n)
			for i := range n {
				w := &countWriter{benchWriter: benchWriter{header: http.Header{}, onFlush: func() {}}}
				writers[i] = w
				serveIn(ctx, b, &served, h, w, testPerson(fmt.Sprintf("user%d", i%people)))
			}
			waitShowing(b, writers, n)
			if h.People() != people {
				b.Fatalf("%d people, want %d", h.People(), people)
			}
			// Every stream first hears of the arrivals after its own.
			settle := func() {
				var sent atomic.Int64
				for range 600 {
					sent.Store(int64(h.Stats().EventsSent))
					if waitQuiet(&sent); int64(h.Stats().EventsSent) == sent.Load() {
						return
					}
				}
			}
			settle()
			announced := h.Stats().Announcements
			b.ResetTimer()
			for range b.N {
				probe := joinPerson(b, h, "probe")
				waitShowing(b, writers, n+1)
				b.StopTimer()
				probe.leave(b)
				waitShowing(b, writers, n)
				settle() // the departure's people count and user event too
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(h.Stats().Announcements-announced)/float64(b.N), "announcements/op")
		})
	}
}
