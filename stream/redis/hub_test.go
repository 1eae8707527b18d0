package redis

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headcount/headcount/stream"
)

// The whole path across two instances: real Hubs over real HTTP, sharing
// a real Redis through Counters. Streams opened on one instance raise the
// count its neighbour's subscribers see, closing them lowers it, and when
// an instance dies its neighbour's subscribers are corrected within
// InstanceTTL + Refresh.
func TestHubsShareTheCount(t *testing.T) {
	f := newFixture(t)
	opts := Options{InstanceTTL: testTTL, Refresh: testRefresh}
	a := f.counter(t, opts)
	b := f.counter(t, opts)
	hubA := newHubServer(t, a)
	hubB := newHubServer(t, b)

	bob := openStream(t, hubB, "bob")
	bob.awaitCount(t, 1)

	alice1 := openStream(t, hubA, "alice")
	alice2 := openStream(t, hubA, "alice")
	for _, s := range []*sseStream{alice1, alice2, bob} {
		s.awaitCount(t, 3)
	}

	alice1.close()
	alice2.close()
	bob.awaitCount(t, 1)

	carol := openStream(t, hubA, "carol")
	bob.awaitCount(t, 2)
	carol.awaitCount(t, 2)

	// Instance A dies: nothing on it says goodbye, and its hub stays up
	// (its Store fails from now on). Bob must stop counting carol.
	start := time.Now()
	if err := a.shutdown(false); err != nil {
		t.Fatalf("killing a: %v", err)
	}
	bob.awaitCount(t, 1)
	if took, limit := time.Since(start), testTTL+testRefresh+slack; took > limit {
		t.Errorf("bob was corrected %v after A died, want at most %v", took, limit)
	}

	// A new stream on the survivor counts from the corrected number.
	dave := openStream(t, hubB, "dave")
	dave.awaitCount(t, 2)
	bob.awaitCount(t, 2)
}

// newHubServer serves a Hub counting through c on a real loopback HTTP
// server, the user taken from the X-User header. Cleanup closes the hub
// and the server before c (cleanups run last-registered first).
func newHubServer(t *testing.T, c *Counter) *httptest.Server {
	t.Helper()
	hub := stream.NewHub(stream.Config{Counter: c, Logger: testLogger(t)})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := hub.Serve(w, r, r.Header.Get("X-User")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			t.Errorf("hub.Close: %v", err)
		}
		ts.Close()
	})
	return ts
}

// sseStream is one client holding GET /events, reading it line by line as
// an EventSource would and keeping the latest "user count".
type sseStream struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader stops
	update chan struct{} // one slot: a count arrived

	mu     sync.Mutex
	counts []int
	err    error // why the stream ended
}

// openStream opens GET /events on ts as user and starts reading it;
// cleanup closes it.
func openStream(t *testing.T, ts *httptest.Server, user string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("X-User", user)
	resp, err := ts.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /events as %s: %v", user, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		cancel()
		t.Fatalf("GET /events as %s: %s, Content-Type %q", user, resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{cancel: cancel, done: make(chan struct{}), update: make(chan struct{}, 1)}
	go s.read(resp)
	t.Cleanup(s.close)
	return s
}

// read dispatches events at blank lines, as the SSE rules say, and records
// the data of every "user count" event.
func (s *sseStream) read(resp *http.Response) {
	defer close(s.done)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if event == "user count" {
				n, err := strconv.Atoi(data)
				s.mu.Lock()
				if err != nil {
					s.err = errors.Join(s.err, err)
				} else {
					s.counts = append(s.counts, n)
				}
				s.mu.Unlock()
				select {
				case s.update <- struct{}{}:
				default:
				}
			}
			event, data = "", ""
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a heartbeat
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			data = value
		}
	}
	s.mu.Lock()
	s.err = errors.Join(s.err, sc.Err())
	s.mu.Unlock()
}

// close ends the stream from the client's side and waits for the reader.
func (s *sseStream) close() {
	s.cancel()
	<-s.done
}

// awaitCount waits until the latest count received is want.
func (s *sseStream) awaitCount(t *testing.T, want int) {
	t.Helper()
	deadline := time.NewTimer(testTTL + testRefresh + 5*slack)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		counts := append([]int(nil), s.counts...)
		err := s.err
		s.mu.Unlock()
		if len(counts) > 0 && counts[len(counts)-1] == want {
			return
		}
		select {
		case <-s.update:
		case <-s.done:
			t.Fatalf("stream ended (%v) with counts %v, want latest %d", err, counts, want)
		case <-deadline.C:
			t.Fatalf("counts %v, want latest %d", counts, want)
		}
	}
}
