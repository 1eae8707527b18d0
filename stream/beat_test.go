package stream

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBeatBeforeAnEventIsDropped writes heartbeats, as r3labs does, on a
// hijacked connection: one with no event for everyone published after it
// goes out, one with such an event right behind it is dropped, and the
// event goes out.
func TestBeatBeforeAnEventIsDropped(t *testing.T) {
	s, wireOf := pipeSubscriber(t)
	h := s.hub

	// The broadcaster's order: a beat (publish count 5), then an event for
	// everyone (6).
	h.beatAt.Store(5)
	h.sharedAt.Store(4)
	writeEvent(t, s, ": first beat\n", "\n") // nothing published after it yet
	h.sharedAt.Store(6)
	writeEvent(t, s, ": second beat\n", "\n") // the event is behind it
	writeEvent(t, s, "id: 8\n", "data: 3\n", "event: user count\n", "\n")
	h.beatAt.Store(7)
	writeEvent(t, s, ": third beat\n", "\n") // after the event: an idle stream's beat

	wire := string(wireOf())
	for _, want := range []string{"first beat", "data: 3", "third beat"} {
		if !strings.Contains(wire, want) {
			t.Errorf("the wire lacks %q:\n%q", want, wire)
		}
	}
	if strings.Contains(wire, "second beat") {
		t.Errorf("the beat with an event behind it was written:\n%q", wire)
	}
	if n := h.stats.eventsSent.Load(); n != 3 {
		t.Errorf("%d events counted as sent, want 3", n)
	}
}

// TestBeatQueuedBeforeAChangeIsDropped drives the broadcaster itself: a
// subscriber held inside a write while a heartbeat and then a change are
// published finds both in its channel once it goes on, and writes the
// change without the beat in front of it; another, never held, gets the
// beat as usual.
func TestBeatQueuedBeforeAChangeIsDropped(t *testing.T) {
	// Beats every 2 s: the steps between one and the change take far
	// less, and the next beat comes long after the held one has gone on.
	h := newServedHub(Config{Heartbeat: 2 * time.Second})
	defer h.stop()
	serve := func(id string) *gateWriter {
		w := &gateWriter{memWriter: newMemWriter()}
		h.serve(h.ctx, t, w, testPerson(id))
		return w
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		if !eventually(waitLong, cond) {
			t.Fatalf("waiting for %s", what)
		}
	}

	held := serve("held")
	wait("the held stream's first count", func() bool { return held.has("data: 1\n") })
	inside := held.holdNextFlush()
	other := serve("other") // the change the held one stops inside
	<-inside
	wait("the other stream's first count", func() bool { return other.has("data: 2\n") })
	wait("a heartbeat after it", func() bool { return other.hasAfter("data: 2\n", ": heartbeat") })
	serve("third") // the change behind the beat
	wait("the change", func() bool { return other.has("data: 3\n") })
	if other.hasAfter("data: 3\n", ": heartbeat") {
		t.Skip("a second beat came before the held stream went on: nothing to see")
	}
	held.release()
	wait("the held stream's change", func() bool { return held.has("data: 3\n") })

	if held.hasAfter("data: 2\n", ": heartbeat") {
		t.Errorf("the held stream wrote the beat in front of the change:\n%q", held.String())
	}
}

// gateWriter is a memWriter that can hold its next flush until released.
type gateWriter struct {
	*memWriter

	gmu    sync.Mutex
	hold   chan struct{} // the next Flush waits for it to be closed
	inside chan struct{} // closed when that Flush has begun waiting
	gate   chan struct{} // the hold being waited on, for release
}

func (w *gateWriter) Flush() {
	w.gmu.Lock()
	hold, inside := w.hold, w.inside
	w.hold = nil
	w.gmu.Unlock()
	if hold != nil {
		close(inside)
		<-hold
	}
	w.memWriter.Flush()
}

// holdNextFlush makes the next Flush wait for release; the channel it
// returns is closed once it does.
func (w *gateWriter) holdNextFlush() <-chan struct{} {
	w.gmu.Lock()
	defer w.gmu.Unlock()
	w.hold, w.inside = make(chan struct{}), make(chan struct{})
	w.gate = w.hold
	return w.inside
}

func (w *gateWriter) release() {
	w.gmu.Lock()
	defer w.gmu.Unlock()
	close(w.gate)
}

func (w *gateWriter) has(s string) bool { return strings.Contains(w.String(), s) }

// hasAfter reports whether s was written after the first after.
func (w *gateWriter) hasAfter(after, s string) bool {
	_, rest, ok := strings.Cut(w.String(), after)
	return ok && strings.Contains(rest, s)
}
