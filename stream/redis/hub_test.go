package redis

import (
	"context"
	"errors"
	"github.com/headcount/headcount/internal/poll"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/redistest"
	"github.com/headcount/headcount/internal/ssetest"
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
// server, the user taken from the X-User header (id and login) and
// X-Name. Cleanup closes the hub and the server before c (cleanups run
// last-registered first).
func newHubServer(t *testing.T, c *Counter) *httptest.Server {
	t.Helper()
	_, ts := newHub(t, c)
	return ts
}

// newHub is newHubServer that also returns the hub.
func newHub(t *testing.T, c *Counter) (*stream.Hub, *httptest.Server) {
	t.Helper()
	return newHubWith(t, stream.Config{Counter: c})
}

// newHubWith is newHub with the hub configured by cfg; ErrUserLimit is
// answered 429, any other refusal 503.
func newHubWith(t *testing.T, cfg stream.Config) (*stream.Hub, *httptest.Server) {
	t.Helper()
	cfg.Logger = testLogger(t)
	hub := stream.NewHub(cfg)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := stream.Person{ID: r.Header.Get("X-User"), Login: r.Header.Get("X-User"), Name: r.Header.Get("X-Name")}
		switch err := hub.Serve(w, r, p); {
		case errors.Is(err, stream.ErrUserLimit):
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		case err != nil:
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
	return hub, ts
}

// sseStream is one client holding GET /events.
type sseStream struct{ *ssetest.Stream }

// openStream opens GET /events on ts as user and starts reading it;
// cleanup closes it.
func openStream(t *testing.T, ts *httptest.Server, user string) *sseStream {
	t.Helper()
	return openStreamAs(t, ts, user, "")
}

// openStreamAs is openStream for a user with a display name.
func openStreamAs(t *testing.T, ts *httptest.Server, user, name string) *sseStream {
	t.Helper()
	s, err := ssetest.Open(t, ts.Client(), ts.URL+"/events", http.Header{"X-User": {user}, "X-Name": {name}})
	if err != nil {
		t.Fatalf("GET /events as %s: %v", user, err)
	}
	return &sseStream{s}
}

// close ends the stream from the client's side and waits for the reader.
func (s *sseStream) close() { s.Close() }

// awaitCount waits until the latest count received is want.
func (s *sseStream) awaitCount(t *testing.T, want int) {
	t.Helper()
	if err := s.WaitLast(testTTL+testRefresh+5*slack, strconv.Itoa(want)); err != nil {
		t.Fatalf("want latest count %d: %v", want, err)
	}
}

// During an outage (Redis hung or refusing), a stream opened on an
// instance gets its first count within a second: the last global count
// corrected by the local changes since. Open streams stay open, the hub
// says the count is partial, and once Redis answers every subscriber on
// both instances sees the true count within five seconds.
func TestNewStreamDuringOutage(t *testing.T) {
	for _, mode := range []string{"hung", "refused"} {
		t.Run(mode, func(t *testing.T) {
			f := ownFixture(redistest.Start(t).URL())
			p, viaProxy := newProxy(t, f)
			a := f.counter(t, Options{}, viaProxy)
			b := f.counter(t, Options{})
			// With the per-user limit on, a join asks Redis first too.
			hubA, tsA := newHubWith(t, stream.Config{Counter: a, MaxStreamsPerUser: 32})
			_, tsB := newHubWith(t, stream.Config{Counter: b, MaxStreamsPerUser: 32})

			bob := openStream(t, tsB, "bob")
			alice := openStream(t, tsA, "alice")
			alice.awaitCount(t, 2)
			bob.awaitCount(t, 2)

			if mode == "hung" {
				p.SetFrozen(true)
			} else {
				p.SetCut(true)
			}
			start := time.Now()
			carol := openStream(t, tsA, "carol")
			if err := carol.WaitLast(time.Second, "3"); err != nil {
				t.Fatalf("a stream opened during the outage: %v (after %v)", err, time.Since(start))
			}
			t.Logf("first count during the outage after %v", time.Since(start))
			// Its first events say the count is partial; so do the others'.
			for _, s := range []*sseStream{carol, alice} {
				if err := s.WaitLastOf(time.Second, "count state", "partial"); err != nil {
					t.Fatalf("no count state partial during the outage: %v", err)
				}
			}
			if evs := carol.Events(); len(evs) < 3 || evs[0].Event != "user count" || evs[1].Event != "people count" || evs[2].Event != "count state" {
				t.Errorf("a new stream's first events during the outage: %+v, want user count, people count, count state", evs)
			}
			alice.awaitCount(t, 3)
			if !hubA.Stats().Partial {
				t.Error("the hub does not say the count is partial")
			}

			p.SetFrozen(false)
			p.SetCut(false)
			start = time.Now()
			for _, s := range []*sseStream{alice, bob, carol} {
				if err := s.WaitLast(5*time.Second-time.Since(start), "3"); err != nil {
					t.Fatalf("after the outage: %v", err)
				}
			}
			eventuallyTrue(t, 5*time.Second, "the hub's count no longer partial", func() bool { return !hubA.Stats().Partial })
			for _, s := range []*sseStream{alice, carol} {
				if err := s.WaitLastOf(5*time.Second, "count state", "exact"); err != nil {
					t.Fatalf("no count state exact after the outage: %v", err)
				}
			}
			if evs := bob.Events(); slices.ContainsFunc(evs, func(e ssetest.Event) bool { return e.Event == "count state" }) {
				t.Errorf("bob, on the instance that never lost Redis, was told of a partial count: %+v", evs)
			}
		})
	}
}

// eventuallyTrue polls cond every 20 ms until it holds or within passes.
func eventuallyTrue(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if poll.Until(within, cond) != nil {
		t.Fatalf("%s: not within %v", what, within)
	}
}
