package stream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// stallLimit is how late a change may reach the watchers while another
// client is stuck: a stuck reader that held up the shared stream for
// longer would fail TestStuckClient.
const stallLimit = 100 * time.Millisecond

// stuckPad is the response head of a stuck client: far more than the
// socket buffers hold, so the server's very first write to a client that
// reads nothing blocks.
const stuckPad = 1 << 20

// smallSendBuffers gives every connection the server accepts a small
// kernel send buffer, so a client that stops reading blocks the server's
// writes after a few kilobytes instead of megabytes.
func smallSendBuffers(ts *httptest.Server) {
	ts.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if tc, ok := c.(*net.TCPConn); ok && state == http.StateNew {
			_ = tc.SetWriteBuffer(4096)
		}
	}
}

// userStreams returns how many streams user holds on the hub.
func userStreams(h *Hub, user string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.perUser[user]
}

// registered returns how many subscribers r3labs has registered: the local count.
func registered(h *Hub) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.registered
}

// dialStuck opens a stream as user that reads nothing at all, not even
// the response head, and returns once the hub counts it: the server's
// write of its head is then blocked on the full socket.
func dialStuck(t *testing.T, s *testServer, user string) *sseClient {
	t.Helper()
	before := registered(s.hub)
	c := mustDialRaw(t, s.addr(), user, dialOptions{rcvbuf: 1024, noHead: true, local: "127.0.0.2",
		headers: map[string]string{padHeader: strconv.Itoa(stuckPad)}})
	if !eventually(waitLong, func() bool { return registered(s.hub) > before }) {
		t.Fatalf("the stuck client %s was never counted in", user)
	}
	return c
}

// mustDialRaw is dialStream that fails the test on error.
func mustDialRaw(t *testing.T, addr, user string, opt dialOptions) *sseClient {
	t.Helper()
	c, err := dialStream(t, addr, user, opt)
	if err != nil {
		t.Fatalf("dial %s: %v", user, err)
	}
	return c
}

// TestStuckClient holds a real TCP client that never reads beside three
// watchers and churn as fast as the test can make it, with heartbeats
// every 20 ms: far more events than its 64-slot r3labs channel holds,
// long before its write could time out (a minute here). While the stuck
// client is held, every change must reach every watcher within
// stallLimit: a stuck reader whose channel filled would block the shared
// stream until its write deadline. The hub must drop it for falling
// behind (Stats.DroppedBehind), bringing the count down.
//
// A busy machine's scheduling can delay one step past the limit now and
// then, where a stall would last until the write deadline on every try.
// So the scenario is tried up to three times, each on a fresh hub, and
// fails only if every try saw a step over the limit.
func TestStuckClient(t *testing.T) {
	var worsts []time.Duration
	for try := range 3 {
		var worst time.Duration
		t.Run(fmt.Sprintf("try%d", try+1), func(t *testing.T) { worst = stuckClientTry(t) })
		if t.Failed() {
			return
		}
		if worst <= stallLimit {
			return
		}
		worsts = append(worsts, worst)
	}
	t.Errorf("in each of 3 tries a change took longer than %v to reach every watcher while a client was stuck (%v): the stuck client stalled the others",
		stallLimit, worsts)
}

// stuckClientTry runs TestStuckClient's scenario once and returns its
// slowest step while the client was stuck.
func stuckClientTry(t *testing.T) time.Duration {
	s := newTestServer(t, Config{
		Heartbeat:    20 * time.Millisecond,
		WriteTimeout: time.Minute,
		Coalesce:     time.Millisecond,
	}, smallSendBuffers)

	var watchers []*sseClient
	for i := range 3 {
		watchers = append(watchers, mustDial(t, s.addr(), fmt.Sprintf("watcher%d", i), dialOptions{}))
	}
	// current waits until every watcher shows the number of streams the
	// hub counts, and returns how long the latest event took to reach them
	// all from the moment the hub had it out.
	current := func(step int) time.Duration {
		t.Helper()
		if !eventually(waitLong, func() bool { return s.hub.Count() == registered(s.hub) }) {
			t.Fatalf("step %d: the hub did not publish its count %d (it shows %d)", step, registered(s.hub), s.hub.Count())
		}
		head, published := s.hub.shared.Load(), time.Now()
		for i, w := range watchers {
			if !w.waitUntil(waitLong, func(c *sseClient) bool { return c.latestID() >= head }) {
				t.Fatalf("step %d: watcher %d has event %d, the hub published %d", step, i, w.latestID(), head)
			}
		}
		took := time.Since(published)
		for i, w := range watchers {
			ok := w.waitUntil(waitLong, func(c *sseClient) bool { return c.latest() == registered(s.hub) })
			if !ok {
				t.Fatalf("step %d: watcher %d shows %d, the hub counts %d", step, i, w.latest(), registered(s.hub))
			}
		}
		return took
	}
	current(0)

	dialStuck(t, s, "stuck")
	start, events := time.Now(), s.hub.published.Load()
	var (
		dropped         time.Duration
		eventsWhenStuck uint64
		worst           time.Duration
		stepsWhileStuck int
		worstDial       time.Duration
	)
	for step := 1; step <= 5000 && time.Since(start) < 20*time.Second; step++ {
		// A step that starts while the client is stuck is judged, even if
		// the drop comes while it waits: a stall ends with the drop.
		stuck := dropped == 0
		// A stalled stream also holds up r3labs' registration of a newcomer.
		dialStart := time.Now()
		c := mustDial(t, s.addr(), "churn", dialOptions{local: "127.0.0.3"})
		dialled := time.Since(dialStart)
		took := max(dialled, current(step))
		if step%2 == 0 {
			c.close()
		} else {
			c.reset()
		}
		took = max(took, current(step))
		if stuck {
			worst = max(worst, took)
			worstDial = max(worstDial, dialled)
			stepsWhileStuck++
		}
		if dropped == 0 && userStreams(s.hub, "stuck") == 0 {
			dropped = time.Since(start)
			eventsWhenStuck = s.hub.published.Load() - events
		}
		// Steps go on past the drop until more events have come than the
		// channel holds: had the client not been dropped, it would have
		// filled by then. They show the watchers still current, too.
		if dropped > 0 && s.hub.published.Load()-events > 2*subscriberBuffer {
			break
		}
	}
	if dropped == 0 {
		t.Fatalf("the stuck client was not dropped within %v (stats %+v)", time.Since(start), s.hub.Stats())
	}
	t.Logf("stuck client dropped after %v and %d events; the slowest step (connect, or publication to every watcher) took %v (slowest connect %v); stats %+v",
		dropped, eventsWhenStuck, worst, worstDial, s.hub.Stats())
	if n := s.hub.Stats().DroppedBehind; n != 1 {
		t.Errorf("DroppedBehind = %d, want 1: the stuck client was not dropped for falling behind", n)
	}
	// Dropped before its channel could fill, in a run with more events
	// than the channel holds, all within a fraction of WriteTimeout.
	if eventsWhenStuck >= subscriberBuffer {
		t.Errorf("the stuck client was dropped after %d events: its %d-slot channel could have filled", eventsWhenStuck, subscriberBuffer)
	}
	if n := s.hub.published.Load() - events; n <= 2*subscriberBuffer {
		t.Errorf("only %d events in the run: the stuck client's channel never could have filled, nothing was tested", n)
	}
	if stepsWhileStuck < 2 {
		t.Errorf("only %d churn steps while the client was stuck: nothing was tested", stepsWhileStuck)
	}
	for i, w := range watchers {
		w.waitLatest(t, len(watchers), time.Second)
		events, _ := w.snapshot()
		checkOrder(t, fmt.Sprintf("watcher %d", i), events, nil)
	}
	return worst
}

// TestQuietStuckClientTimesOut: where too few events come for a stuck
// client to fall behind, its blocked write times out: the client is
// dropped after WriteTimeout (between half of it and all of it: the
// deadline moves at most every WriteTimeout/2), not held forever.
func TestQuietStuckClientTimesOut(t *testing.T) {
	const writeTimeout = 2 * time.Second
	s := newTestServer(t, Config{WriteTimeout: writeTimeout}, smallSendBuffers)
	watcher := mustDial(t, s.addr(), "watcher", dialOptions{})
	dialStuck(t, s, "stuck")
	start := time.Now()
	watcher.waitLatest(t, 2, waitLong)
	if !eventually(2*writeTimeout, func() bool { return userStreams(s.hub, "stuck") == 0 }) {
		t.Fatalf("the stuck client was still held %v later (stats %+v)", time.Since(start), s.hub.Stats())
	}
	took := time.Since(start)
	watcher.waitLatest(t, 1, waitLong)
	if took < writeTimeout/2 {
		t.Errorf("the stuck client was dropped after %v, before its write could time out", took)
	}
	if n := s.hub.Stats().DroppedBehind; n != 0 {
		t.Errorf("DroppedBehind = %d with a handful of events, want 0: it was not its write timing out", n)
	}
}

// TestCloseEndsStuckStream shows that Close does not wait WriteTimeout for
// a client that does not read: its blocked write fails at once.
func TestCloseEndsStuckStream(t *testing.T) {
	s := newTestServer(t, Config{WriteTimeout: time.Minute}, smallSendBuffers)
	watcher := mustDial(t, s.addr(), "watcher", dialOptions{})
	stuck := dialStuck(t, s, "stuck")
	watcher.waitLatest(t, 2, waitLong)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.hub.Close(ctx); err != nil {
		t.Fatalf("Close: %v after %v", err, time.Since(start))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v with a stuck client", took)
	}
	if !watcher.waitEnded(waitLong) {
		t.Error("the watcher's stream did not end")
	}
	// The hub closed the stuck connection it had taken over: reading it
	// now drains what the kernel holds and then ends.
	_ = stuck.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.Copy(io.Discard, stuck.conn); isTimeout(err) {
		t.Errorf("the stuck connection is still open after %d bytes", n)
	}
	if !eventually(time.Second, func() bool { return s.serving.Load() == 0 }) {
		t.Errorf("%d Serve calls still running after Close", s.serving.Load())
	}
}

// TestSlowClientCatchesUp: a client that pauses reading (its first write
// blocked) while the count changes must still end on the latest count,
// in order, once it reads again within WriteTimeout.
func TestSlowClientCatchesUp(t *testing.T) {
	s := newTestServer(t, Config{WriteTimeout: time.Minute, Coalesce: time.Millisecond}, smallSendBuffers)
	slow := dialStuck(t, s, "slow")
	for i := range 10 {
		c := mustDial(t, s.addr(), fmt.Sprintf("other%d", i), dialOptions{})
		c.waitLatest(t, i+2, waitLong)
	}
	if err := slow.readHead(t, dialOptions{}); err != nil {
		t.Fatal(err)
	}
	slow.waitLatest(t, 11, waitLong)
	events, _ := slow.snapshot()
	checkOrder(t, "slow", events, nil)
	if events[0].Data != "1" && events[0].Data != "2" {
		t.Errorf("the slow client's first event %+v, want the count when it joined", events[0])
	}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestBurstOutrunningWritersDropsNobody: with merging off, a burst of
// joins publishes events faster than hundreds of subscriber goroutines on
// a few cores get to write them, so many fall far behind without being
// stuck. The hub must wait for them, not drop them: every stream is still
// held once the count settles, and DroppedBehind stays 0.
func TestBurstOutrunningWritersDropsNobody(t *testing.T) {
	const n = 300
	h := NewHub(Config{Coalesce: -1})
	ctx, cancel := context.WithCancel(context.Background())
	var served sync.WaitGroup
	for i := range n {
		w := &benchWriter{header: http.Header{}, onFlush: func() {}}
		serveIn(ctx, t, &served, h, w, testPerson(fmt.Sprintf("user%d", i)))
	}
	settled := eventually(waitLong, func() bool { return h.Count() == n })
	st := h.Stats()
	cancel()
	served.Wait()
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !settled {
		t.Fatalf("the count never reached %d: stats %+v", n, st)
	}
	if st.DroppedBehind != 0 || st.Subscribers != n {
		t.Errorf("%d streams dropped for falling behind, %d of %d held: a burst that merely outran the writers dropped them",
			st.DroppedBehind, st.Subscribers, n)
	}
	t.Logf("published %d events for %d joins", h.published.Load(), n)
}

// TestSlowReaderIsDropped: a client that keeps reading, but a little at a
// time (16 bytes every 20 ms), while events come far faster, has every
// write blocked for a while but none for long. Waiting for it would set
// everyone's pace to its own; it must be dropped for falling behind, long
// before its write timeout (a minute here), and the watcher stays current.
func TestSlowReaderIsDropped(t *testing.T) {
	s := newTestServer(t, Config{
		Heartbeat:    2 * time.Millisecond,
		WriteTimeout: time.Minute,
		Coalesce:     time.Millisecond,
	}, smallSendBuffers)
	watcher := mustDial(t, s.addr(), "watcher", dialOptions{})
	watcher.waitLatest(t, 1, waitLong)
	slow := mustDialRaw(t, s.addr(), "slow", dialOptions{rcvbuf: 1024, noHead: true, local: "127.0.0.2"})
	if !eventually(waitLong, func() bool { return registered(s.hub) == 2 }) {
		t.Fatal("the slow client was never counted in")
	}
	stop, read := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 16)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = slow.conn.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := slow.conn.Read(buf); err != nil && !isTimeout(err) {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-read
	}()
	start := time.Now()
	if !eventually(20*time.Second, func() bool { return s.hub.Stats().DroppedBehind == 1 }) {
		t.Fatalf("a client reading 16 bytes every 20 ms was not dropped within %v: the hub waits for it (stats %+v)",
			time.Since(start), s.hub.Stats())
	}
	t.Logf("the slow reader was dropped after %v", time.Since(start))
	watcher.waitLatest(t, 1, waitLong)
}
