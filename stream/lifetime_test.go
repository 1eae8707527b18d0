package stream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestLifetime serves streams whose request carries a Lifetime: Serve
// returns as soon as the hub has taken the connection over, TakenOver
// having run once before it returned, the stream lives on, ends when the
// Lifetime's Until is done (a revoked session), and Ended runs once, after
// it has ended.
func TestLifetime(t *testing.T) {
	hub := NewHub(Config{})
	until, revoke := context.WithCancel(context.Background())
	defer revoke()
	var ended, returned atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		takenOver := 0 // TakenOver runs on this goroutine
		lt := Lifetime{Ended: func() { ended.Add(1) }, TakenOver: func() { takenOver++ }}
		if r.Header.Get(userHeader) == "revoked" {
			lt.Until = until
		}
		if err := hub.Serve(w, r.WithContext(WithLifetime(r.Context(), lt)), testPerson(r.Header.Get(userHeader))); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
		if takenOver != 1 {
			t.Errorf("TakenOver ran %d times before Serve returned on a hijacked stream, want 1", takenOver)
		}
		returned.Add(1)
	}))
	defer ts.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			t.Error(err)
		}
	}()

	a := mustDial(t, ts.Listener.Addr().String(), "alice", dialOptions{})
	a.waitLatest(t, 1, waitLong)
	if !eventually(waitLong, func() bool { return returned.Load() == 1 }) {
		t.Fatal("Serve did not return while its hijacked stream lives")
	}
	b := mustDial(t, ts.Listener.Addr().String(), "revoked", dialOptions{local: "127.0.0.2"})
	a.waitLatest(t, 2, waitLong)
	b.waitLatest(t, 2, waitLong)
	if ended.Load() != 0 {
		t.Fatalf("Ended ran %d times while both streams live", ended.Load())
	}
	revoke()
	if !b.waitEnded(waitLong) {
		t.Fatal("the stream did not end when its Lifetime's Until was done")
	}
	a.waitLatest(t, 1, waitLong)
	if !eventually(waitLong, func() bool { return ended.Load() == 1 }) {
		t.Fatalf("Ended ran %d times after one stream ended, want 1", ended.Load())
	}
	a.close()
	if !eventually(waitLong, func() bool { return ended.Load() == 2 && hub.Stats().Subscribers == 0 }) {
		t.Fatalf("after both ended: Ended ran %d times, %d subscribers", ended.Load(), hub.Stats().Subscribers)
	}
}

// TestCloseWaitsForEnded: Close returns only once every stream's Ended has
// run, so a server that stops after Close has written every request line.
func TestCloseWaitsForEnded(t *testing.T) {
	hub := NewHub(Config{})
	entered, gate := make(chan struct{}), make(chan struct{})
	var done atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lt := Lifetime{Ended: func() {
			close(entered)
			<-gate
			done.Store(true)
		}}
		if err := hub.Serve(w, r.WithContext(WithLifetime(r.Context(), lt)), testPerson("alice")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	defer ts.Close()
	c := mustDial(t, ts.Listener.Addr().String(), "alice", dialOptions{})
	c.waitLatest(t, 1, waitLong)
	c.close()
	select {
	case <-entered:
	case <-time.After(waitLong):
		t.Fatal("Ended did not run after the stream ended")
	}

	closed := make(chan bool, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		err := hub.Close(ctx)
		closed <- err == nil && done.Load()
	}()
	// Close has begun (and, were it not to wait, decided to return).
	if !eventually(waitLong, func() bool { return hub.Ready(context.Background()) == ErrClosed }) {
		t.Fatal("Close did not begin")
	}
	close(gate)
	if ok := <-closed; !ok {
		t.Error("Close returned before the stream's Ended had run to its end")
	}
}
