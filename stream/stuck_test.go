package stream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

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
	return h.presence.streams(user)
}

// TestStuckClient holds a real TCP client that never reads beside three
// watchers and steady churn. The watchers must keep showing the true count
// within a second of every change, and the stuck client must be dropped,
// bringing the count down, once its writes block for WriteTimeout.
func TestStuckClient(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	s := newTestServer(t, Config{
		Heartbeat:    2 * time.Millisecond,
		WriteTimeout: writeTimeout,
		Coalesce:     time.Millisecond,
	}, smallSendBuffers)

	var watchers []*sseClient
	for i := range 3 {
		watchers = append(watchers, mustDial(t, s.addr(), fmt.Sprintf("watcher%d", i), dialOptions{}))
	}
	stuck := mustDial(t, s.addr(), "stuck", dialOptions{rcvbuf: 1024, noRead: true, local: "127.0.0.2"})
	start := time.Now()

	// current waits until every watcher shows the number of streams the hub holds.
	current := func(step int) {
		t.Helper()
		for i, w := range watchers {
			ok := w.waitUntil(time.Second, func(c *sseClient) bool {
				return c.latest() == int(s.hub.Stats().Subscribers)
			})
			if !ok {
				t.Fatalf("step %d: watcher %d shows %d, the hub holds %d", step, i, w.latest(), s.hub.Stats().Subscribers)
			}
		}
	}
	current(0)

	var dropped time.Duration
	for step := 1; step <= 5000 && time.Since(start) < 15*time.Second; step++ {
		c := mustDial(t, s.addr(), "churn", dialOptions{local: "127.0.0.3"})
		current(step)
		if step%2 == 0 {
			c.close()
		} else {
			c.reset()
		}
		current(step)
		if dropped == 0 && userStreams(s.hub, "stuck") == 0 {
			dropped = time.Since(start)
		}
		// A few more steps after the drop show the watchers still current.
		if dropped > 0 && step%20 == 0 {
			break
		}
	}
	if dropped == 0 {
		t.Fatalf("the stuck client was not dropped within %v (stats %+v)", time.Since(start), s.hub.Stats())
	}
	for i, w := range watchers {
		w.waitLatest(t, len(watchers), time.Second)
		events, _ := w.snapshot()
		checkOrder(t, fmt.Sprintf("watcher %d", i), events, nil)
	}
	t.Logf("stuck client dropped after %v; stats %+v", dropped, s.hub.Stats())

	// The server has closed the stuck connection: reading it now drains
	// what the kernel holds and then ends.
	_ = stuck.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, stuck.conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("the stuck connection is still open after %d bytes", n)
	}
}

// fillBuffers changes the count, one change at a time, until the stream of
// user (a client that does not read) has had an event pending through 20
// changes in a row: its socket is full and its r3labs loop is blocked in a
// write to the connection.
func fillBuffers(t *testing.T, s *testServer, counter *offsetCounter, user string) {
	t.Helper()
	s.hub.mu.Lock()
	var stuck *subscriber
	for _, sub := range s.hub.subs {
		if sub.person.ID == user {
			stuck = sub
		}
	}
	s.hub.mu.Unlock()
	if stuck == nil {
		t.Fatalf("no stream of %s", user)
	}
	deadline := time.Now().Add(20 * time.Second)
	for streak := 0; streak < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("the buffers of a client that does not read never filled: %+v", s.hub.Stats())
		}
		want := s.hub.Count() + 1
		counter.bump()
		eventually(time.Second, func() bool { return s.hub.Count() >= want })
		if stuck.w.pending.Load() > 0 {
			streak++
		} else {
			streak = 0
		}
	}
}

// TestCloseEndsStuckStream shows that Close does not wait WriteTimeout for
// a client that does not read: its blocked write fails at once.
func TestCloseEndsStuckStream(t *testing.T) {
	counter := newOffsetCounter()
	s := newTestServer(t, Config{Counter: counter, Coalesce: -1, WriteTimeout: time.Minute}, smallSendBuffers)
	watcher := mustDial(t, s.addr(), "watcher", dialOptions{})
	mustDial(t, s.addr(), "stuck", dialOptions{rcvbuf: 1024, noRead: true})
	fillBuffers(t, s, counter, "stuck")
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
	// Close returns once every Serve has left the hub; the handler around
	// Serve returns a moment later.
	if !eventually(time.Second, func() bool { return s.serving.Load() == 0 }) {
		t.Errorf("%d Serve calls still running after Close", s.serving.Load())
	}
}

// TestSlowClientCatchesUp: a client that pauses reading long enough to miss
// a count (its buffers are full) must still end on the latest count once
// it reads again, with no further change to carry it.
func TestSlowClientCatchesUp(t *testing.T) {
	counter := newOffsetCounter()
	s := newTestServer(t, Config{Counter: counter, Coalesce: -1, WriteTimeout: time.Minute}, smallSendBuffers)
	slow := mustDial(t, s.addr(), "slow", dialOptions{rcvbuf: 1024, noRead: true})
	fillBuffers(t, s, counter, "slow")
	// The count changes while the slow client cannot take the event.
	other := mustDial(t, s.addr(), "other", dialOptions{})
	want := int(counter.extra.Load()) + 2
	other.waitLatest(t, want, waitLong)
	slow.startReading()
	slow.waitLatest(t, want, waitLong)
	events, _ := slow.snapshot()
	checkOrder(t, "slow", events, nil)
}
