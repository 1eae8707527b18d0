package stream

import (
	"strings"
	"testing"
)

// TestBeatBeforeAnEventIsDropped writes heartbeats, as r3labs does, on a
// hijacked connection: one with no event for everyone published after it
// goes out, one with such an event right behind it is dropped, and the
// event goes out.
func TestBeatBeforeAnEventIsDropped(t *testing.T) {
	s, wireOf := pipeSubscriber(t)
	h := s.hub
	write := func(pieces ...string) {
		t.Helper()
		for _, p := range pieces {
			if _, err := s.Write([]byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		s.Flush()
	}

	// The broadcaster's order: a beat (publish count 5), then an event for
	// everyone (6).
	h.beatAt.Store(5)
	h.sharedAt.Store(4)
	write(": first beat\n", "\n") // nothing published after it yet
	h.sharedAt.Store(6)
	write(": second beat\n", "\n") // the event is behind it
	write("id: 8\n", "data: 3\n", "event: user count\n", "\n")
	h.beatAt.Store(7)
	write(": third beat\n", "\n") // after the event: an idle stream's beat

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
