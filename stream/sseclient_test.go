package stream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/poll"
	"github.com/headcount/headcount/internal/ssetest"
)

// testPerson is the person of a test stream: id and login alike.
func testPerson(id string) Person { return Person{ID: id, Login: id} }

// userHeader names the user a test request acts for; the real handlers
// take it from the session instead.
const userHeader = "X-Test-User"

// avatarHeader gives the test request's person that avatar URL.
const avatarHeader = "X-Test-Avatar"

// padHeader asks the test server for a response head padded to about
// that many bytes.
const padHeader = "X-Test-Pad"

// testServer is a Hub served over real TCP by httptest.
type testServer struct {
	hub     *Hub
	ts      *httptest.Server
	serving atomic.Int64 // Serve calls in progress
}

// newTestServer starts a hub with cfg behind a real loopback HTTP server
// that answers a refusal with an error status (429 for either limit, 503
// when closed; the real statuses are handlers/events.go's). Cleanup closes both.
// Each setup function may adjust the server before it starts.
func newTestServer(t testing.TB, cfg Config, setup ...func(*httptest.Server)) *testServer {
	t.Helper()
	s := &testServer{hub: NewHub(cfg)}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveEvents))
	for _, f := range setup {
		f(s.ts)
	}
	if s.ts.TLS != nil {
		s.ts.StartTLS() // a setup asked for TLS
	} else {
		s.ts.Start()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.hub.Close(ctx); err != nil {
			t.Errorf("hub.Close: %v", err)
		}
		s.ts.Close()
	})
	return s
}

func (s *testServer) serveEvents(w http.ResponseWriter, r *http.Request) {
	s.serving.Add(1)
	defer s.serving.Add(-1)
	if n, _ := strconv.Atoi(r.Header.Get(padHeader)); n > 0 {
		// As middleware sets headers before the stream: a head this long
		// does not fit in the socket buffers of a client that never reads.
		w.Header().Set("X-Pad", strings.Repeat("p", n))
	}
	p := testPerson(r.Header.Get(userHeader))
	p.AvatarURL = r.Header.Get(avatarHeader)
	err := s.hub.Serve(w, r, p)
	switch {
	case errors.Is(err, ErrUserLimit), errors.Is(err, ErrInstanceLimit):
		http.Error(w, err.Error(), http.StatusTooManyRequests)
	case errors.Is(err, ErrClosed):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (s *testServer) addr() string { return s.ts.Listener.Addr().String() }

// sseEvent is one dispatched event as a client sees it.
type sseEvent = ssetest.Event

// sseClient reads one SSE response over its own TCP connection.
type sseClient struct {
	conn net.Conn
	resp *http.Response
	done chan struct{} // closed when the stream ends (EOF or error), once reading
	// reading is whether the reader goroutine was started; only the test
	// goroutine touches it.
	reading bool

	mu       sync.Mutex
	events   []sseEvent
	comments []time.Time
	readErr  error
	update   chan struct{} // one slot: something was read
}

// dialOptions tunes how a test client connects.
type dialOptions struct {
	local   string            // source IP, e.g. "127.0.0.3"
	rcvbuf  int               // SO_RCVBUF set before connecting, if > 0
	headers map[string]string // extra request headers
	query   string            // raw query of /events
	noRead  bool              // do not read the body until startReading (a stuck client)
	noHead  bool              // do not even read the response head: return once the request is sent
}

// dialStream opens GET /events as user and reads the response head. A 200
// answer starts a reader goroutine (unless noRead); any other answer is
// returned with its body read and the connection closed. Cleanup closes the
// connection and waits for the reader.
func dialStream(t testing.TB, addr, user string, opt dialOptions) (*sseClient, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if opt.local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(opt.local)}
	}
	if opt.rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, opt.rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	path := "/events"
	if opt.query != "" {
		path += "?" + opt.query
	}
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s: %s\r\n", path, addr, userHeader, user)
	for k, v := range opt.headers {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req.String()); err != nil {
		conn.Close()
		return nil, err
	}
	c := &sseClient{conn: conn, done: make(chan struct{}), update: make(chan struct{}, 1)}
	if opt.noHead {
		_ = conn.SetDeadline(time.Time{})
		t.Cleanup(c.close)
		return c, nil
	}
	return c, c.readHead(t, opt)
}

// readHead reads the response head of a stream dialled with noHead (or
// by dialStream), and starts reading the events unless opt.noRead.
func (c *sseClient) readHead(t testing.TB, opt dialOptions) error {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c.conn), &http.Request{Method: http.MethodGet})
	if err != nil {
		c.conn.Close()
		return err
	}
	_ = c.conn.SetDeadline(time.Time{})
	c.resp = resp
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		c.conn.Close()
		close(c.done)
		return nil
	}
	if !opt.noRead {
		c.startReading()
	}
	if !opt.noHead {
		t.Cleanup(c.close)
	}
	return nil
}

// mustDial is dialStream that fails the test on error or a non-200 answer.
func mustDial(t testing.TB, addr, user string, opt dialOptions) *sseClient {
	t.Helper()
	c, err := dialStream(t, addr, user, opt)
	if err != nil {
		t.Fatalf("dial %s: %v", user, err)
	}
	if c.resp.StatusCode != http.StatusOK {
		t.Fatalf("dial %s: status %d", user, c.resp.StatusCode)
	}
	return c
}

// startReading starts the reader goroutine; the test goroutine calls it
// once, at most.
func (c *sseClient) startReading() {
	c.reading = true
	go c.read()
}

// close ends the connection (FIN) and waits for the reader to stop.
func (c *sseClient) close() {
	c.conn.Close()
	if c.reading {
		<-c.done
	}
}

// reset ends the connection with a TCP RST instead of a FIN.
func (c *sseClient) reset() {
	if tc, ok := c.conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.close()
}

// read parses the event stream until it ends, by ssetest.Parser's rules.
func (c *sseClient) read() {
	defer close(c.done)
	br := bufio.NewReader(c.resp.Body)
	var p ssetest.Parser
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			c.notify()
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if _, ok := ssetest.Comment(line); ok {
			c.mu.Lock()
			c.comments = append(c.comments, time.Now())
			c.mu.Unlock()
			c.notify()
			continue
		}
		if ev, ok := p.Line(line); ok {
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
			c.notify()
		}
	}
}

func (c *sseClient) notify() {
	select {
	case c.update <- struct{}{}:
	default:
	}
}

// snapshot returns copies of what has been read so far.
func (c *sseClient) snapshot() (events []sseEvent, comments int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sseEvent(nil), c.events...), len(c.comments)
}

// latest returns the value of the last "user count" event, or -1 before the first.
func (c *sseClient) latest() int { return c.latestOf(countEventName) }

// latestOf returns the value of the last event named name, or -1 before the first.
func (c *sseClient) latestOf(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.events) - 1; i >= 0; i-- {
		if c.events[i].Event != name {
			continue
		}
		n, err := strconv.Atoi(c.events[i].Data)
		if err != nil {
			return -2
		}
		return n
	}
	return -1
}

// latestID is the id of the latest event, or 0.
func (c *sseClient) latestID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) == 0 {
		return 0
	}
	id, _ := strconv.ParseUint(c.events[len(c.events)-1].ID, 10, 64)
	return id
}

// waitUntil polls cond whenever something is read, until it holds or
// timeout passes; it reports whether it held.
func (c *sseClient) waitUntil(timeout time.Duration, cond func(c *sseClient) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if cond(c) {
			return true
		}
		select {
		case <-c.update:
		case <-c.done:
			return cond(c)
		case <-deadline.C:
			return cond(c)
		}
	}
}

// waitLatest waits until the client's latest count is want.
func (c *sseClient) waitLatest(t testing.TB, want int, timeout time.Duration) {
	t.Helper()
	if !c.waitUntil(timeout, func(c *sseClient) bool { return c.latest() == want }) {
		t.Fatalf("latest count %d, want %d after %v", c.latest(), want, timeout)
	}
}

// waitEnded waits until the server has ended the client's stream.
func (c *sseClient) waitEnded(timeout time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// eventually polls cond until it holds or timeout passes, for conditions
// no client reads tell about (the hub's numbers).
// burstEnded waits until the hub has seen closed streams end and returns
// when: the end of a burst as the server sees it, from which the contract's
// second runs. A client's close reaches the hub later than the client
// makes it, the later the busier the machine.
func (s *testServer) burstEnded(t testing.TB, closed int) time.Time {
	t.Helper()
	if !eventually(waitLong, func() bool { return s.hub.Stats().Closed == uint64(closed) }) {
		t.Fatalf("the hub saw %d of the %d closed streams end", s.hub.Stats().Closed, closed)
	}
	return time.Now()
}

func eventually(timeout time.Duration, cond func() bool) bool {
	return poll.Until(timeout, cond) == nil
}

// checkOrder fails unless the client's ids strictly increase, and records
// each (id, value) in seen so that callers can check all clients agree.
func checkOrder(t testing.TB, name string, events []sseEvent, seen map[uint64]string) {
	t.Helper()
	var last uint64
	for i, ev := range events {
		id, err := strconv.ParseUint(ev.ID, 10, 64)
		if err != nil {
			t.Fatalf("%s: event %d has id %q", name, i, ev.ID)
		}
		if id <= last {
			t.Fatalf("%s: event %d has id %d after %d", name, i, id, last)
		}
		last = id
		if seen == nil {
			continue
		}
		if v, ok := seen[id]; ok && v != ev.Data {
			t.Fatalf("%s: id %d carries %s, another stream got %s", name, id, ev.Data, v)
		}
		seen[id] = ev.Data
	}
}

// dialMany opens total streams on s from 50 concurrent clients spread over
// source addresses 127.0.0.1-4, as users user0 to user<users-1>, and fails
// the test if any is refused. each, if not nil, runs on the opening
// goroutine for every stream as soon as it is open. It returns every
// stream opened.
func dialMany(t *testing.T, s *testServer, total, users int, each func(i int, c *sseClient)) []*sseClient {
	t.Helper()
	const workers = 50
	var (
		mu      sync.Mutex
		opened  []*sseClient
		errs    []error
		indexes = make(chan int, total)
		wg      sync.WaitGroup
	)
	for i := range total {
		indexes <- i
	}
	close(indexes)
	for range workers {
		wg.Go(func() {
			for i := range indexes {
				c, err := dialStream(t, s.addr(), fmt.Sprintf("user%d", i%users), dialOptions{local: fmt.Sprintf("127.0.0.%d", 1+i%4)})
				if err == nil && c.resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("stream %d: status %d", i, c.resp.StatusCode)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					opened = append(opened, c)
				}
				mu.Unlock()
				if err == nil && each != nil {
					each(i, c)
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d streams failed, first: %v", len(errs), errs[0])
	}
	return opened
}
