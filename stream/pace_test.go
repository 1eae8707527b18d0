package stream

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoneChangesWaitForTheFanOut: a lone leave while a broadcast to
// everyone is still being written waits until it is out, and the leaves
// that come meanwhile go with it: one more fan-out, not one per leave.
// Published at once, each queued behind the last in every subscriber's
// channel, and at the end of a churn of 19,000 three of them stacked a
// second of fan-out in front of the final count.
func TestLoneChangesWaitForTheFanOut(t *testing.T) {
	const n, leavers = paceFrom + 50, 3
	h := NewHub(Config{})
	defer h.Close(context.Background())

	// Every flush takes a millisecond or more under one lock while slow
	// is on: a fan-out to n then lasts seconds, however many cores and
	// however busy the machine, while each flush still moves the delivery
	// on (a stalled one would count as over after deliveryIdle).
	var (
		slow   atomic.Bool
		slowMu sync.Mutex
	)
	onFlush := func() {
		if slow.Load() {
			slowMu.Lock()
			time.Sleep(time.Millisecond)
			slowMu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var served sync.WaitGroup
	defer func() {
		slow.Store(false)
		cancel()
		served.Wait()
	}()
	// The leavers flush at once: their leaves take effect when they come.
	serve := func(ctx context.Context, id string, onFlush func()) {
		w := &benchWriter{header: http.Header{}, onFlush: onFlush}
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/events", nil)
		served.Go(func() {
			if err := h.Serve(w, r, testPerson(id)); err != nil {
				t.Error(err)
			}
		})
	}
	for i := range n {
		serve(ctx, fmt.Sprintf("user%d", i), onFlush)
	}
	leave := make([]context.CancelFunc, leavers)
	for i := range leave {
		var lctx context.Context
		lctx, leave[i] = context.WithCancel(ctx)
		serve(lctx, "user0", func() {}) // a second tab: no one goes offline
	}
	if !eventually(waitLong, func() bool { return h.Count() == n+leavers }) {
		t.Fatalf("the count is %d, want %d", h.Count(), n+leavers)
	}

	// One more join starts a slow fan-out; the leaves come while it is
	// being written, 30 ms apart (more than the coalescing gap, so each
	// would be a cycle of its own).
	slow.Store(true)
	serve(ctx, "late", onFlush)
	if !eventually(waitLong, func() bool { return h.delivered.Load() > 0 && h.Count() == n+leavers+1 }) {
		t.Fatal("the late join's fan-out never started")
	}
	before := h.published.Load()
	for _, stop := range leave {
		stop()
		_ = eventually(30*time.Millisecond, func() bool { return false }) // spaces the leaves
	}
	if !eventually(waitLong, func() bool { return h.Stats().Subscribers == n+1 }) {
		t.Fatalf("the hub holds %d streams, want %d", h.Stats().Subscribers, n+1)
	}
	// All three have left while the fan-out is still being written:
	// nothing may have gone out for them yet.
	if got := h.published.Load() - before; got != 0 {
		t.Errorf("%d events published for lone leaves while a fan-out was being written, want none until it was out", got)
	}
	slow.Store(false)
	if !eventually(waitLong, func() bool { return h.Count() == n+1 && h.delivered.Load() >= h.deliverTo.Load() }) {
		t.Fatalf("the count is %d, want %d", h.Count(), n+1)
	}
	if got := h.published.Load() - before; got != 1 {
		t.Errorf("%d events published for %d lone leaves during a fan-out, want 1 with all of them", got, leavers)
	}
}
