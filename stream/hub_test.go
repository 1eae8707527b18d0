package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

const waitLong = 5 * time.Second

func TestWireFormat(t *testing.T) {
	s := newTestServer(t, Config{Retry: 1500 * time.Millisecond})
	a := mustDial(t, s.addr(), "alice", dialOptions{})

	h := a.resp.Header
	for name, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	a.waitLatest(t, 1, waitLong)
	b := mustDial(t, s.addr(), "bob", dialOptions{})
	a.waitLatest(t, 2, waitLong)
	b.waitLatest(t, 2, waitLong)

	a.waitUntil(waitLong, func(c *sseClient) bool { return c.latestOf(peopleEventName) == 2 })
	events, _ := a.snapshot()
	checkOrder(t, "alice", events, nil)
	first, second := events[0], events[1]
	if first.Event != "user count" || first.Data != "1" || first.ID == "" || first.Retry != "1500" {
		t.Errorf("first event %+v, want event \"user count\", data 1, an id and retry 1500", first)
	}
	if second.Event != "people count" || second.Data != "1" || second.Retry != "" {
		t.Errorf("second event %+v, want event \"people count\", data 1 and no retry", second)
	}
	for _, ev := range events[2:] {
		if ev.Retry != "" || ev.ID == "" {
			t.Errorf("later event %+v, want an id and no retry", ev)
		}
		switch ev.Event {
		case "user count", "people count", "user":
		default:
			t.Errorf("later event %+v has an unknown name", ev)
		}
	}
	// No replay log grows behind the stream (r3labs' AutoReplay is off).
	if log := s.hub.sse.CreateStream(sharedStream).Eventlog; len(log) != 0 {
		t.Errorf("r3labs kept %d events for replay", len(log))
	}
	bEvents, _ := b.snapshot()
	if bEvents[0].Retry != "1500" || bEvents[0].Data != "2" {
		t.Errorf("bob's first event %+v, want data 2 with retry 1500", bEvents[0])
	}
}

func TestTwoUsersTwoTabs(t *testing.T) {
	s := newTestServer(t, Config{})
	var open []*sseClient
	expectAll := func(want int) {
		t.Helper()
		for _, c := range open {
			c.waitLatest(t, want, waitLong)
		}
		if got := s.hub.Count(); got != want {
			t.Errorf("hub.Count() = %d, want %d", got, want)
		}
	}

	alice1 := mustDial(t, s.addr(), "alice", dialOptions{})
	open = append(open, alice1)
	expectAll(1)
	alice2 := mustDial(t, s.addr(), "alice", dialOptions{local: "127.0.0.2"})
	open = append(open, alice2)
	expectAll(2)
	bob1 := mustDial(t, s.addr(), "bob", dialOptions{local: "127.0.0.3"})
	open = append(open, bob1)
	expectAll(3)

	alice1.close() // a clean close: FIN
	open = []*sseClient{alice2, bob1}
	expectAll(2)
	bob1.reset() // the network drops: RST
	open = []*sseClient{alice2}
	expectAll(1)

	var seen = map[uint64]string{}
	for name, c := range map[string]*sseClient{"alice1": alice1, "alice2": alice2, "bob1": bob1} {
		events, _ := c.snapshot()
		checkOrder(t, name, events, seen)
	}
	st := s.hub.Stats()
	if st.Opened != 3 || st.Closed != 2 || st.Subscribers != 1 {
		t.Errorf("stats %+v, want 3 opened, 2 closed, 1 subscriber", st)
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		users     []string // opened in order; all must be accepted
		refused   string   // then this user must be refused
		wantErr   error
		wantCount func(Stats) uint64
	}{
		{"per user", Config{MaxStreamsPerUser: 2}, []string{"alice", "alice", "bob"}, "alice", ErrUserLimit,
			func(s Stats) uint64 { return s.RefusedUserLimit }},
		{"per instance", Config{MaxStreams: 3}, []string{"alice", "bob", "carol"}, "dave", ErrInstanceLimit,
			func(s Stats) uint64 { return s.RefusedInstanceLimit }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.cfg)
			var last *sseClient
			for _, u := range tc.users {
				last = mustDial(t, s.addr(), u, dialOptions{})
			}
			last.waitLatest(t, len(tc.users), waitLong)

			// Through HTTP: a 429 with the handler's text and nothing from the hub.
			c, err := dialStream(t, s.addr(), tc.refused, dialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if c.resp.StatusCode != http.StatusTooManyRequests || c.resp.Header.Get("Content-Type") == "text/event-stream" {
				t.Fatalf("refused stream: status %d, content type %q", c.resp.StatusCode, c.resp.Header.Get("Content-Type"))
			}
			// Directly: the error, and not a byte written.
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/events", nil)
			if err := s.hub.Serve(rec, req, testPerson(tc.refused)); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Serve = %v, want %v", err, tc.wantErr)
			}
			if rec.Body.Len() != 0 || len(rec.Header()) != 0 || rec.Flushed {
				t.Errorf("refusal wrote %d bytes, headers %v", rec.Body.Len(), rec.Header())
			}
			st := s.hub.Stats()
			if got := tc.wantCount(st); got != 2 {
				t.Errorf("refusals counted %d, want 2", got)
			}
			if st.Subscribers != int64(len(tc.users)) || st.Opened != uint64(len(tc.users)) {
				t.Errorf("stats %+v: the count moved", st)
			}
			// A refusal signals nothing, so give a wrongly moved count time to show.
			if last.waitUntil(200*time.Millisecond, func(c *sseClient) bool { return c.latest() != len(tc.users) }) {
				t.Errorf("a watcher saw %d after a refusal", last.latest())
			}
		})
	}
}

func TestNoLimitByDefault(t *testing.T) {
	s := newTestServer(t, Config{})
	const n = 20
	var last *sseClient
	for i := range n {
		last = mustDial(t, s.addr(), "alice", dialOptions{local: fmt.Sprintf("127.0.0.%d", 1+i%4)})
	}
	last.waitLatest(t, n, waitLong)
	if st := s.hub.Stats(); st.RefusedUserLimit+st.RefusedInstanceLimit != 0 {
		t.Errorf("refusals with no limits: %+v", st)
	}
}

func TestClientStreamAndLastEventIDIgnored(t *testing.T) {
	s := newTestServer(t, Config{})
	watcher := mustDial(t, s.addr(), "alice", dialOptions{})
	watcher.waitLatest(t, 1, waitLong)
	watcherEvents, _ := watcher.snapshot()

	cases := []dialOptions{
		{query: "stream=other"},
		{query: "stream=" + sharedStream},
		{query: "stream="},
		{headers: map[string]string{"Last-Event-ID": "abc"}},
		{headers: map[string]string{"Last-Event-ID": watcherEvents[0].ID}, query: "stream=all&x=%zz"},
	}
	for i, opt := range cases {
		c, err := dialStream(t, s.addr(), "bob", opt)
		if err != nil {
			t.Fatal(err)
		}
		if c.resp.StatusCode != http.StatusOK {
			t.Fatalf("case %d: status %d, want 200", i, c.resp.StatusCode)
		}
		c.waitLatest(t, 2, waitLong)
		watcher.waitLatest(t, 2, waitLong)
		// The only stream r3labs knows is the shared one.
		for _, name := range []string{"other", "", "s1"} {
			if s.hub.sse.StreamExists(name) {
				t.Errorf("case %d: r3labs has a stream %q", i, name)
			}
		}
		if !s.hub.sse.StreamExists(sharedStream) {
			t.Errorf("case %d: the shared stream is missing", i)
		}
		c.waitUntil(waitLong, func(c *sseClient) bool { return c.latestOf(peopleEventName) == 2 })
		events, _ := c.snapshot()
		if len(events) != 2 || events[0].Data != "2" || events[1].Event != peopleEventName || events[1].Data != "2" {
			t.Errorf("case %d: events %+v, want exactly the counts, 2 and 2 (no replay)", i, events)
		}
		c.close()
		watcher.waitLatest(t, 1, waitLong)
	}
	if got := s.hub.Stats().Opened; got != uint64(1+len(cases)) {
		t.Errorf("opened %d streams, want %d", got, 1+len(cases))
	}
}

func TestHeartbeat(t *testing.T) {
	const every, beats = 50 * time.Millisecond, 10
	s := newTestServer(t, Config{Heartbeat: every})
	dialed := time.Now()
	c := mustDial(t, s.addr(), "alice", dialOptions{})
	if !c.waitUntil(waitLong, func(c *sseClient) bool { _, n := c.snapshot(); return n >= beats }) {
		t.Fatalf("fewer than %d heartbeats arrived within %v", beats, waitLong)
	}
	c.mu.Lock()
	got := append([]time.Time(nil), c.comments...)
	c.mu.Unlock()
	// The interval is honoured: the hub's ticker ticks once an interval,
	// so at most (arrival-dial)/interval + 1 ticks fall between the dial
	// and the last beat's arrival, and at most two from before the dial
	// (one the broadcaster holds, one in the ticker's channel) can still
	// be sent after it. That holds however late the hub sends, or the
	// client reads, any one beat; the time between two beats as the
	// client saw them would not.
	if took := got[beats-1].Sub(dialed); took < (beats-3)*every {
		t.Errorf("%d heartbeats arrived %v after the dial, with an interval of %v", beats, took, every)
	}
	// And they keep coming: a generous bound for a loaded -race run.
	if took := got[beats-1].Sub(got[1]); took > (beats-2)*every+3*time.Second {
		t.Errorf("heartbeats 2 to %d took %v with an interval of %v", beats, took, every)
	}
	// The server counts an event once its flush returns, which may be just
	// after the client has read it.
	if !eventually(waitLong, func() bool { return s.hub.Stats().EventsSent >= beats+1 }) {
		t.Errorf("EventsSent = %d after a count and %d heartbeats", s.hub.Stats().EventsSent, beats)
	}
	// Heartbeats are comments: they never change what the client knows.
	c.waitLatest(t, 1, waitLong)
}

func TestCoalescing(t *testing.T) {
	s := newTestServer(t, Config{})
	watcher := mustDial(t, s.addr(), "watcher", dialOptions{})
	watcher.waitLatest(t, 1, waitLong)

	const burst, people = 200, 10
	errs := make(chan error, burst)
	for i := range burst {
		go func() {
			c, err := dialStream(t, s.addr(), "u"+strconv.Itoa(i%people), dialOptions{local: fmt.Sprintf("127.0.0.%d", 1+i%4)})
			if err == nil && c.resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", c.resp.StatusCode)
			}
			errs <- err
		}()
	}
	for range burst {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	watcher.waitLatest(t, burst+1, waitLong)
	// A cycle's user events follow its counts on the wire.
	watcher.waitUntil(waitLong, func(c *sseClient) bool {
		return c.latestOf(peopleEventName) == people+1 && len(c.announcements(t)) >= people
	})
	events, _ := watcher.snapshot()
	checkOrder(t, "watcher", events, nil)
	counts, announced := 0, map[string]int{}
	for _, ev := range events {
		switch ev.Event {
		case countEventName, peopleEventName:
			counts++
		case userEventName:
			var u userPayload
			if err := json.Unmarshal([]byte(ev.Data), &u); err != nil {
				t.Fatalf("user event %q: %v", ev.Data, err)
			}
			announced[u.Login]++
		}
	}
	if counts >= 50 {
		t.Errorf("a burst of %d joins sent the watcher %d count events, want far fewer", burst, counts)
	}
	// One announcement per person, however many streams they opened.
	if len(announced) != people {
		t.Errorf("announced %d people, want %d: %v", len(announced), people, announced)
	}
	for login, n := range announced {
		if n != 1 {
			t.Errorf("%s announced %d times, want once", login, n)
		}
	}
	t.Logf("%d joins by %d people reached the watcher in %d count events and %d announcements", burst, people, counts, len(events)-counts)
}

func TestReady(t *testing.T) {
	h := NewHub(Config{})
	if err := h.Ready(context.Background()); err != nil {
		t.Fatalf("Ready on an open hub: %v", err)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Ready(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ready after Close = %v, want ErrClosed", err)
	}

	down := errors.New("redis is down")
	h = NewHub(Config{Counter: pingCounter{err: down}})
	defer h.Close(context.Background())
	if err := h.Ready(context.Background()); !errors.Is(err, down) {
		t.Fatalf("Ready with a failing Ping = %v, want %v", err, down)
	}
}

// pingCounter is a Memory counter whose Ping answers err.
type pingCounter struct {
	Memory
	err error
}

func (p pingCounter) Ping(context.Context) error { return p.err }
