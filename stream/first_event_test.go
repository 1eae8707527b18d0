package stream

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedCounter is a Memory counter whose first Store waits for release, so
// a test can change the hub while a broadcast cycle is in the middle.
type gatedCounter struct {
	entered chan int // receives local of every Store, if there is room
	release chan struct{}
	changes chan struct{}
}

func newGatedCounter() *gatedCounter {
	return &gatedCounter{entered: make(chan int, 100), release: make(chan struct{}), changes: make(chan struct{}, 1)}
}

func (c *gatedCounter) Store(ctx context.Context, local int) (int, error) {
	select {
	case c.entered <- local:
	default:
	}
	select {
	case <-c.release:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return local, nil
}

func (c *gatedCounter) Changes() <-chan struct{} { return c.changes }

// nextStore waits for the broadcaster's next Store call and returns its local count.
func (c *gatedCounter) nextStore(t *testing.T) int {
	t.Helper()
	select {
	case n := <-c.entered:
		return n
	case <-time.After(waitLong):
		t.Fatal("the broadcaster did not call Store")
		return 0
	}
}

// TestFirstEventCountsTheSubscriber: a subscriber that joins while a
// cycle is under way is not in that cycle's count, so it must not get that
// cycle's value as its first event, even if it is ready in time.
func TestFirstEventCountsTheSubscriber(t *testing.T) {
	counter := newGatedCounter()
	s := newTestServer(t, Config{Counter: counter})
	counter.changes <- struct{}{}
	if n := counter.nextStore(t); n != 0 {
		t.Fatalf("first Store with nobody connected got local %d", n)
	}
	// The cycle is blocked in Store with a count of 0; this stream joins
	// and gets its response head meanwhile.
	c := mustDial(t, s.addr(), "alice", dialOptions{})
	close(counter.release)

	c.waitLatest(t, 1, waitLong)
	events, _ := c.snapshot()
	if events[0].Data != "1" || events[0].Retry == "" {
		t.Errorf("first event %+v, want the count 1 with the retry hint", events[0])
	}
}

// TestFirstEventWaitsForRegistration: until r3labs has registered a
// subscriber with the shared stream, events published there miss it, so
// the hub must not count it before then, and its first event must be a
// count published after it was registered.
func TestFirstEventWaitsForRegistration(t *testing.T) {
	counter := newGatedCounter()
	close(counter.release)
	h := NewHub(Config{Counter: counter})
	defer h.Close(context.Background())

	// r3labs reads the headers before it registers the subscriber: holding
	// Header() holds the subscriber unregistered.
	proceed := make(chan struct{})
	w := newMemWriter()
	w.block = proceed
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- h.Serve(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/events", nil), testPerson("alice"))
	}()
	defer func() {
		cancel()
		<-served
	}()

	// A cycle while the subscriber cannot receive does not count it.
	counter.changes <- struct{}{}
	if n := counter.nextStore(t); n != 0 {
		t.Fatalf("Store got local %d while the subscriber was unregistered, want 0", n)
	}
	close(proceed)
	// Its registration brings the cycle that counts it.
	if n := counter.nextStore(t); n != 1 {
		t.Fatalf("Store got local %d after the registration, want 1", n)
	}
	if !w.waitFor(waitLong, "data: 1\n") {
		t.Fatalf("the subscriber never got its first count; it got %q", w.String())
	}
	if strings.Contains(w.String(), "data: 0") {
		t.Errorf("the subscriber was sent a count that does not count it: %q", w.String())
	}
}

// memWriter is an in-memory flushable ResponseWriter for tests that need
// to hold the hub at a precise point. Its first Header call waits for
// block, when set.
type memWriter struct {
	header  http.Header
	block   chan struct{}
	once    sync.Once
	flushed chan struct{} // one slot: a flush happened

	mu  sync.Mutex
	buf bytes.Buffer
}

func newMemWriter() *memWriter {
	return &memWriter{header: http.Header{}, flushed: make(chan struct{}, 1)}
}

func (w *memWriter) Header() http.Header {
	if w.block != nil {
		w.once.Do(func() { <-w.block })
	}
	return w.header
}

func (w *memWriter) WriteHeader(int) {}

func (w *memWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *memWriter) Flush() {
	select {
	case w.flushed <- struct{}{}:
	default:
	}
}

func (w *memWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the written text contains s.
func (w *memWriter) waitFor(timeout time.Duration, s string) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if strings.Contains(w.String(), s) {
			return true
		}
		select {
		case <-w.flushed:
		case <-deadline.C:
			return strings.Contains(w.String(), s)
		}
	}
}

// stalledWriter is a raw r3labs subscriber whose first flush blocks until
// release is closed: it stalls the shared stream's relay loop once its
// 64-slot channel is full, as a stuck subscriber can.
type stalledWriter struct {
	header  http.Header
	release chan struct{}
	stalled chan struct{} // closed when the first flush blocks
	once    sync.Once
}

func (w *stalledWriter) Header() http.Header         { return w.header }
func (w *stalledWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *stalledWriter) WriteHeader(int)             {}
func (w *stalledWriter) Flush() {
	w.once.Do(func() {
		close(w.stalled)
		<-w.release
	})
}

// TestLostFirstEventIsSentAgain: when the newcomers' first event cannot be
// published (r3labs' queue is full), they must stay newcomers and get it
// from a later cycle, although no one else joins; else they drop every
// event, their own count included, for good.
func TestLostFirstEventIsSentAgain(t *testing.T) {
	counter := newGatedCounter()
	s := newTestServer(t, Config{Counter: counter})

	// A subscriber of the shared stream that does not read.
	w := &stalledWriter{header: http.Header{}, release: make(chan struct{}), stalled: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.hub.sse.ServeHTTP(w, s.hub.request.WithContext(ctx))
	}()
	defer func() {
		cancel()
		select {
		case <-w.release:
		default:
			close(w.release)
		}
		<-served
	}()
	<-w.stalled

	// alice is registered; the cycle that counts her waits in Store.
	a := mustDial(t, s.addr(), "alice", dialOptions{})
	if n := counter.nextStore(t); n != 1 {
		t.Fatalf("Store got local %d, want 1", n)
	}
	// Fill the stalled channel and then the stream's queue.
	fill := heartbeatEvent()
	sent := 0
	if !eventually(waitLong, func() bool {
		for s.hub.sse.TryPublish(sharedStream, fill) {
			s.hub.published.Add(1) // as Hub.publish counts it, or alice looks far ahead
			sent++
		}
		return sent >= subscriberBuffer+1+streamQueue // the channel, the relay's hands, the queue
	}) {
		t.Fatalf("the shared stream took %d events while stalled", sent)
	}
	skipped := s.hub.Stats().Skipped
	close(counter.release)
	if !eventually(waitLong, func() bool { return s.hub.Stats().Skipped > skipped }) {
		t.Fatalf("alice's first event was published into a full queue: %+v", s.hub.Stats())
	}
	close(w.release)
	cancel()

	a.waitLatest(t, 1, waitLong)
	events, _ := a.snapshot()
	if events[0].Event != countEventName || events[0].Data != "1" {
		t.Errorf("alice's first event %+v, want the count 1", events[0])
	}
}

// TestLateRegistrationIsNotBehind: events published while a subscriber
// waits to be registered with the shared stream never reach it (in a ramp
// hundreds wait while r3labs' relay loop hands out events). It is not
// behind by them: it must get the next count at once, and be neither
// waited for nor dropped as a reader that fell behind.
func TestLateRegistrationIsNotBehind(t *testing.T) {
	h := NewHub(Config{WriteTimeout: time.Minute})
	defer h.Close(context.Background())
	serve := func(w *memWriter, id string) func() {
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() {
			served <- h.Serve(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/events", nil), testPerson(id))
		}()
		return func() {
			cancel()
			<-served
		}
	}
	watcher := newMemWriter()
	defer serve(watcher, "alice")()
	if !watcher.waitFor(waitLong, "data: 1\n") {
		t.Fatalf("the watcher never got its first count; it got %q", watcher.String())
	}

	// bob's stream waits before r3labs registers it (Header is held)
	// while more events go out than a subscriber may fall behind by.
	proceed := make(chan struct{})
	late := newMemWriter()
	late.block = proceed
	defer serve(late, "bob")()
	for range dropDepth {
		if !h.publish(heartbeatEvent()) {
			t.Fatalf("a heartbeat could not be published: %+v", h.Stats())
		}
	}
	close(proceed)

	// Its registration brings the count 2, to both, within the contract's
	// second (not the minute a wait for a lagging reader may take).
	for name, w := range map[string]*memWriter{"watcher": watcher, "bob": late} {
		if !w.waitFor(time.Second, "data: 2\n") {
			t.Errorf("%s was not told the count 2 within a second (stats %+v); it got %q", name, h.Stats(), w.String())
		}
	}
	if n := h.Stats().DroppedBehind; n != 0 {
		t.Errorf("%d streams were dropped as behind", n)
	}
}

// TestJoinIsOneEvent: a join's cycle is one r3labs event (withNewcomers),
// so every subscriber is woken for it once: those streaming are told what
// changed and nothing else, and the newcomer gets its first two events
// and nothing else, both over the wire as an EventSource reads it.
func TestJoinIsOneEvent(t *testing.T) {
	s := newTestServer(t, Config{Coalesce: time.Millisecond})
	watcher := mustDial(t, s.addr(), "alice", dialOptions{})
	watcher.waitLatest(t, 1, waitLong)

	// join opens a stream of who and returns what it was sent, once the
	// watcher has had want events since its start.
	join := func(who string, want int) []sseEvent {
		t.Helper()
		before := s.hub.published.Load()
		c := mustDial(t, s.addr(), who, dialOptions{})
		if !c.waitUntil(waitLong, func(c *sseClient) bool { events, _ := c.snapshot(); return len(events) >= 2 }) {
			t.Fatalf("%s: no first events", who)
		}
		if !watcher.waitUntil(waitLong, func(c *sseClient) bool { events, _ := c.snapshot(); return len(events) >= want }) {
			t.Fatalf("%s's join: the watcher has no %d events", who, want)
		}
		if n := s.hub.published.Load() - before; n != 1 {
			t.Errorf("%s's join published %d r3labs events, want 1", who, n)
		}
		mine, comments := c.snapshot()
		if comments != 0 {
			t.Errorf("%s got %d comments", who, comments)
		}
		return mine
	}
	check := func(who string, got []sseEvent, want []sseEvent) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s got %d events %+v, want %d: %+v", who, len(got), got, len(want), want)
		}
		for i := range want {
			if got[i].Event != want[i].Event || got[i].Data != want[i].Data || (got[i].Retry != "") != (want[i].Retry != "") {
				t.Errorf("%s's event %d = %+v, want %+v", who, i, got[i], want[i])
			}
		}
	}
	first := func(users, people int) []sseEvent {
		return []sseEvent{
			{Event: countEventName, Data: strconv.Itoa(users), Retry: "yes"},
			{Event: peopleEventName, Data: strconv.Itoa(people)},
		}
	}

	// A second tab of alice's: the user count alone changes.
	mine := join("alice", 3)
	check("alice's second stream", mine, first(2, 1))
	if id := eventID(t, mine[0]); !newcomersOnly(id) || eventID(t, mine[1]) != id+1 {
		t.Errorf("first events' ids %s, %s: want an odd one and the next", mine[0].ID, mine[1].ID)
	}
	// Bob: the user count, the people count and bob's arrival.
	mine = join("bob", 6)
	check("bob", mine, first(3, 2))
	told, comments := watcher.snapshot()
	if comments != 0 {
		t.Errorf("the watcher got %d comments", comments)
	}
	if len(told) != 6 {
		t.Fatalf("the watcher got %d events %+v, want 6", len(told), told)
	}
	check("the watcher", told[:2], first(1, 1))
	check("the watcher", told[2:5], []sseEvent{
		{Event: countEventName, Data: "2"}, {Event: countEventName, Data: "3"}, {Event: peopleEventName, Data: "2"}})
	if told[5].Event != userEventName || !strings.Contains(told[5].Data, `"login":"bob"`) {
		t.Errorf("the watcher's events %+v: want bob's arrival last", told)
	}
	checkOrder(t, "watcher", told, nil)
}
