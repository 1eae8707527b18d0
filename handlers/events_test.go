package handlers_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/fakegithub"
	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/internal/testserver"
)

func TestEventsNeedsCredentials(t *testing.T) {
	e := start(t, nil)
	resp, body := get(t, &http.Client{}, e.url+"/events")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(body, "sign in") {
		t.Fatalf("GET /events signed out: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if st := e.srv.Hub().Stats(); st.Opened != 0 || st.Subscribers != 0 {
		t.Errorf("a refused stream moved the count: %+v", st)
	}
}

func TestEventsWireAndHeaders(t *testing.T) {
	e := start(t, map[string]string{"HEADCOUNT_HEARTBEAT": "50ms"})
	c := browser(t)
	e.signIn(c, alice)
	s := e.stream(c)
	h := s.Response.Header
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if h.Get("Content-Encoding") != "" {
		t.Error("the stream is compressed")
	}
	if err := s.WaitLast(waitTime, "1"); err != nil {
		t.Fatal(err)
	}
	first := s.Events()[0]
	if first.Event != "user count" || first.Data != "1" || first.ID == "" || first.Retry == "" {
		t.Errorf("first event %+v: want event \"user count\", data 1, an id and a retry hint", first)
	}
	err := s.Wait(waitTime, func(_ []ssetest.Event, comments []string, _ bool) bool { return len(comments) >= 2 })
	if err != nil {
		t.Fatalf("heartbeats: %v", err)
	}
	// The page's count agrees.
	_, body := get(t, c, e.url+"/api/count")
	if strings.TrimSpace(body) != `{"user_count":1,"people_count":1}` {
		t.Errorf("/api/count %s, want 1", body)
	}
}

func TestTwoUsersTwoTabs(t *testing.T) {
	e := start(t, nil)
	ca, cb := browser(t), browser(t)
	e.signIn(ca, alice)
	e.signIn(cb, bob)

	a1 := e.stream(ca)
	mustLast(t, "1", a1)
	b1 := e.stream(cb)
	mustLast(t, "2", a1, b1)
	a2 := e.stream(ca)
	mustLast(t, "3", a1, b1, a2)
	a2.Close()
	mustLast(t, "2", a1, b1)
	b1.Close()
	mustLast(t, "1", a1)
}

func TestStreamLimits(t *testing.T) {
	e := start(t, map[string]string{"HEADCOUNT_MAX_STREAMS_PER_USER": "2", "HEADCOUNT_MAX_STREAMS": "3"})
	ca, cb, cc := browser(t), browser(t), browser(t)
	e.signIn(ca, alice)
	e.signIn(cb, bob)
	e.signIn(cc, fakegithub.User{ID: 1003, Login: "carol", AvatarURL: "https://avatars.example/1003"})

	a1, a2 := e.stream(ca), e.stream(ca)
	mustLast(t, "2", a1, a2)
	resp, body := get(t, ca, e.url+"/events")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "too many streams") {
		t.Errorf("third stream for one user: %d %q, want 429", resp.StatusCode, body)
	}
	b1 := e.stream(cb)
	mustLast(t, "3", a1, a2, b1)
	resp, body = get(t, cc, e.url+"/events")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "retry") {
		t.Errorf("stream over the instance limit: %d %q Retry-After %q, want 503", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	// Refusals never moved the count, and the server still answers.
	if got := e.srv.Hub().Count(); got != 3 {
		t.Errorf("count %d after refusals, want 3", got)
	}
	if resp, _ := get(t, cc, e.url+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz at the stream limit: %d", resp.StatusCode)
	}
	a1.Close()
	mustLast(t, "2", a2, b1)
	c1 := e.stream(cc)
	mustLast(t, "3", a2, b1, c1)
}

func TestUnlimitedWhenZero(t *testing.T) {
	e := start(t, map[string]string{"HEADCOUNT_MAX_STREAMS_PER_USER": "0", "HEADCOUNT_MAX_STREAMS": "0"})
	c := browser(t)
	e.signIn(c, alice)
	const n = 40 // above the default per-user limit
	var streams []*ssetest.Stream
	for range n {
		streams = append(streams, e.stream(c))
	}
	mustLast(t, fmt.Sprint(n), streams...)
}

func TestStreamQueryAndLastEventIDAreHarmless(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	e.signIn(c, alice)
	for _, tc := range []struct{ path, lastID string }{
		{"/events?stream=other", ""},
		{"/events?stream=", ""},
		{"/events", "abc"},
		{"/events", "-1"},
		{"/events", strings.Repeat("9", 100)},
	} {
		h := http.Header{}
		if tc.lastID != "" {
			h.Set("Last-Event-ID", tc.lastID)
		}
		s, err := ssetest.Open(t, c, e.url+tc.path, h)
		if err != nil {
			t.Fatalf("%s with Last-Event-ID %q: %v", tc.path, tc.lastID, err)
		}
		if err := s.WaitLast(waitTime, "1"); err != nil {
			t.Fatalf("%s with Last-Event-ID %q: %v", tc.path, tc.lastID, err)
		}
		s.Close()
		waitFor(t, "the stream to end", func() bool { return e.srv.Hub().Stats().Subscribers == 0 })
	}
}

func TestClientThatVanishesIsCountedOut(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	e.signIn(c, alice)
	token := e.token(c)
	watcher := e.stream(c)
	mustLast(t, "1", watcher)

	for _, rst := range []bool{false, true} {
		conn, err := net.Dial("tcp", e.srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n", token)
		r := bufio.NewReader(conn)
		status, _ := r.ReadString('\n')
		if !strings.Contains(status, "200") {
			t.Fatalf("raw stream: %q", status)
		}
		mustLast(t, "2", watcher)
		if rst {
			conn.(*net.TCPConn).SetLinger(0) // Close sends RST
		}
		conn.Close()
		mustLast(t, "1", watcher)
	}
}

func TestMetrics(t *testing.T) {
	e := start(t, map[string]string{"HEADCOUNT_MAX_STREAMS_PER_USER": "1"})
	c := browser(t)
	get(t, c, e.url+"/events") // an auth failure
	e.signIn(c, alice)
	s := e.stream(c)
	mustLast(t, "1", s)
	get(t, c, e.url+"/events") // refused: user limit
	_, body := get(t, c, e.url+"/metrics")
	for _, want := range []string{
		"headcount_subscribers 1",
		"headcount_user_count 1",
		"headcount_streams_opened_total 1",
		"headcount_streams_closed_total 0",
		`headcount_streams_refused_total{reason="user_limit"} 1`,
		`headcount_auth_failures_total{reason="no_credentials"} 1`,
		"headcount_events_sent_total",
		"headcount_heartbeat_write_failures_total 0",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	s.Close()
	waitFor(t, "the stream to close", func() bool {
		_, body := get(t, c, e.url+"/metrics")
		return strings.Contains(body, "headcount_streams_closed_total 1") && strings.Contains(body, "headcount_subscribers 0")
	})
}

func TestHealthAndReadiness(t *testing.T) {
	e := start(t, nil)
	c := &http.Client{}
	if resp, _ := get(t, c, e.url+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, e.url+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz %d", resp.StatusCode)
	}
}

// unreachableCounter is a count store that is down: it keeps the local
// count and fails its ping, as a Redis out of reach does.
type unreachableCounter struct{}

func (unreachableCounter) Store(_ context.Context, local int) (int, error) { return local, nil }
func (unreachableCounter) Changes() <-chan struct{}                        { return nil }
func (unreachableCounter) Ping(context.Context) error                      { return errors.New("connection refused") }

func TestNotReadyWhileTheCountStoreIsDown(t *testing.T) {
	srv := testserver.Start(t, nil, testserver.Options{Counter: unreachableCounter{}})
	c := &http.Client{}
	if resp, body := get(t, c, srv.URL()+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz with the count store down: %d %q, want 503 naming the cause", resp.StatusCode, body)
	}
	if resp, _ := get(t, c, srv.URL()+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz with the count store down: %d, want 200 (the process serves)", resp.StatusCode)
	}
}

func TestCloseEndsEveryStream(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	e.signIn(c, alice)
	var streams []*ssetest.Stream
	for range 10 {
		streams = append(streams, e.stream(c))
	}
	mustLast(t, "10", streams...)
	done := make(chan error, 1)
	go func() { done <- e.srv.Close(t.Context()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close took more than 5 s with streams open")
	}
	for _, s := range streams {
		if err := s.WaitEnd(waitTime); err != nil {
			t.Fatal(err)
		}
		// A clean end of response, not a cut connection: curl exits 0.
		if _, why := s.Ended(); why != ssetest.ErrEnded {
			t.Errorf("stream ended with %v, want a clean end", why)
		}
	}
}

// mustLast waits until every stream's latest event is want.
func mustLast(t *testing.T, want string, streams ...*ssetest.Stream) {
	t.Helper()
	for i, s := range streams {
		if err := s.WaitLast(waitTime, want); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
}
