package stream

import (
	"sync"
	"testing"
	"time"
)

// next lets the broadcaster's next Store through and returns its local count.
func (c *steppedCounter) next(t *testing.T) int {
	t.Helper()
	select {
	case n := <-c.entered:
		select {
		case c.allow <- struct{}{}:
		case <-time.After(waitLong):
			t.Fatal("the broadcaster's Store was not let through")
		}
		return n
	case <-time.After(waitLong):
		t.Fatal("the broadcaster did not call Store")
		return 0
	}
}

// TestBulkArrivalsTellEveryoneAfter: while subscribers arrive in bulk,
// those already streaming are told the counts at most every burstTell
// (the newcomers get theirs at once); when the arrivals stop, they must
// still be told the final count, although nothing changes any more,
// within the contract's second.
func TestBulkArrivalsTellEveryoneAfter(t *testing.T) {
	const bulk = burstNewcomers + 20
	counter := newSteppedCounter()
	s := newTestServer(t, Config{Counter: counter, Coalesce: time.Millisecond})

	watcher := mustDial(t, s.addr(), "watcher", dialOptions{})
	if n := counter.next(t); n != 1 {
		t.Fatalf("Store got local %d, want 1", n)
	}
	watcher.waitLatest(t, 1, waitLong)

	// The first arrival's cycle waits in Store while the rest register:
	// the cycle after it has them all. One person holds them, so that
	// cycle announces nobody (an announcement is told to everyone at once).
	var (
		mu       sync.Mutex
		arrivals []*sseClient
		wg       sync.WaitGroup
	)
	first := mustDial(t, s.addr(), "bulk", dialOptions{})
	select {
	case n := <-counter.entered:
		if n != 2 {
			t.Fatalf("the first arrival's Store got local %d, want 2", n)
		}
	case <-time.After(waitLong):
		t.Fatal("the first arrival started no cycle")
	}
	for range bulk - 1 {
		wg.Go(func() {
			c := mustDial(t, s.addr(), "bulk", dialOptions{})
			mu.Lock()
			arrivals = append(arrivals, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	if !eventually(waitLong, func() bool { return registered(s.hub) == bulk+1 }) {
		t.Fatalf("%d registered, want %d", registered(s.hub), bulk+1)
	}
	// Before the telling the first arrival's cycle makes: no later than it.
	told := time.Now()
	select {
	case counter.allow <- struct{}{}:
	case <-time.After(waitLong):
		t.Fatal("the first arrival's Store was not let through")
	}
	watcher.waitLatest(t, 2, waitLong)
	if n := counter.next(t); n != bulk+1 {
		t.Fatalf("the bulk's Store got local %d, want %d", n, bulk+1)
	}
	// The bulk's own first count comes at once.
	arrivals[0].waitLatest(t, bulk+1, waitLong)
	// Held for certain if the bulk's cycle decided (before now) within
	// burstTell of the last telling (after told); its scheduled retry
	// waits in Store, so the watcher cannot have been told since.
	if held := time.Since(told); held < burstTell {
		if got := watcher.latest(); got != 2 {
			t.Errorf("the watcher was told %d within %v of the last telling, during bulk arrivals; want it held at 2", got, held)
		}
	} else {
		t.Logf("too slow to see the hold (%v after the last telling)", held)
	}
	// From here every cycle goes through at once.
	end := time.Now()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case counter.allow <- struct{}{}:
			case <-done:
				return
			}
		}
	}()
	for i, c := range append([]*sseClient{watcher, first}, arrivals...) {
		if !c.waitUntil(time.Until(end.Add(time.Second)), func(c *sseClient) bool { return c.latest() == bulk+1 }) {
			t.Fatalf("stream %d shows %d a second after the arrivals ended, want %d (stats %+v)", i, c.latest(), bulk+1, s.hub.Stats())
		}
	}
	t.Logf("the watcher was told %d %v after the arrivals ended", bulk+1, time.Since(end))
	events, _ := watcher.snapshot()
	checkOrder(t, "watcher", events, nil)
}
