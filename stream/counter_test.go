package stream

import (
	"context"
	"errors"
	"github.com/headcount/headcount/internal/logbuf"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

func TestMemory(t *testing.T) {
	var c Counter = Memory{}
	for _, n := range []int{0, 1, 7, 10_000} {
		if got, err := c.Store(context.Background(), n); got != n || err != nil {
			t.Errorf("Store(%d) = %d, %v", n, got, err)
		}
	}
	if c.Changes() != nil {
		t.Error("Memory.Changes() is not nil")
	}
}

// flakyCounter is a Memory counter that fails while failing is set, and
// counts its calls.
type flakyCounter struct {
	failing atomic.Bool
	calls   atomic.Int64
}

var errFlaky = errors.New("counter unreachable")

func (c *flakyCounter) Store(_ context.Context, local int) (int, error) {
	c.calls.Add(1)
	if c.failing.Load() {
		return 0, errFlaky
	}
	return local, nil
}

func (c *flakyCounter) Changes() <-chan struct{} { return nil }

// TestCounterFailure: while Store fails the hub logs once, keeps the last
// count, tells a newcomer nothing rather than a count without it, retries,
// and catches everyone up when Store works again.
func TestCounterFailure(t *testing.T) {
	counter := &flakyCounter{}
	logs := &logbuf.Buffer{}
	s := newTestServer(t, Config{Counter: counter, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	a := mustDial(t, s.addr(), "alice", dialOptions{})
	a.waitLatest(t, 1, waitLong)

	counter.failing.Store(true)
	before := counter.calls.Load()
	b := mustDial(t, s.addr(), "bob", dialOptions{})
	// Three failed Stores after bob's join: its join's and its readiness's
	// cycles (perhaps merged into one) and at least one retry.
	if !eventually(waitLong, func() bool { return counter.calls.Load() >= before+3 }) {
		t.Fatalf("Store was not retried: %d calls", counter.calls.Load())
	}
	if events, _ := b.snapshot(); len(events) != 0 {
		t.Errorf("bob got %+v while the count was unknown", events)
	}
	if got := s.hub.Count(); got != 1 || a.latest() != 1 {
		t.Errorf("count %d, alice shows %d while failing; want the last count 1", got, a.latest())
	}
	if n := strings.Count(logs.String(), "storing the count failed"); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, logs)
	}

	counter.failing.Store(false)
	a.waitLatest(t, 2, waitLong)
	b.waitLatest(t, 2, waitLong)
	if events, _ := b.snapshot(); events[0].Retry == "" || events[0].Data != "2" {
		t.Errorf("bob's first event %+v, want 2 with the retry hint", events[0])
	}
	if !strings.Contains(logs.String(), "works again") {
		t.Errorf("the recovery was not logged:\n%s", logs)
	}
}

// offsetCounter is a Counter whose global count is the local one plus an
// offset that the test changes, as another instance would.
type offsetCounter struct {
	extra   atomic.Int64
	changes chan struct{}
}

func newOffsetCounter() *offsetCounter {
	return &offsetCounter{changes: make(chan struct{}, 1)}
}

func (c *offsetCounter) Store(_ context.Context, local int) (int, error) {
	return local + int(c.extra.Load()), nil
}

func (c *offsetCounter) Changes() <-chan struct{} { return c.changes }

// bump raises the global count by one and tells the hub.
func (c *offsetCounter) bump() {
	c.extra.Add(1)
	select {
	case c.changes <- struct{}{}:
	default: // a change is already signalled; the hub reads the offset then
	}
}
