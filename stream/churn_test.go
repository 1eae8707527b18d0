package stream

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestChurn opens 500 streams from 50 concurrent clients and closes half of
// them (by FIN and by RST) while the rest are still opening. Within a second
// of the churn every open stream must show the true count, ids must rise on
// every stream, and one id must mean one value on all streams.
func TestChurn(t *testing.T) {
	const total = 500
	s := newTestServer(t, Config{})

	var (
		mu   sync.Mutex
		kept []*sseClient
	)
	all := dialMany(t, s, total, 37, func(i int, c *sseClient) {
		switch i % 4 {
		case 0:
			c.close()
		case 1:
			c.reset()
		default:
			mu.Lock()
			kept = append(kept, c)
			mu.Unlock()
		}
	})
	want := len(kept)

	end := s.burstEnded(t, total-want)
	deadline := end.Add(time.Second)
	for i, c := range kept {
		if !c.waitUntil(time.Until(deadline), func(c *sseClient) bool { return c.latest() == want }) {
			// Tell a slow machine from a lost update.
			late := c.waitUntil(waitLong, func(c *sseClient) bool { return c.latest() == want })
			t.Fatalf("stream %d shows %d one second after the churn, want %d (hub count %d; got there %v later: %v; stats %+v)",
				i, c.latest(), want, s.hub.Count(), time.Since(end), late, s.hub.Stats())
		}
	}
	t.Logf("every stream showed %d %v after the churn", want, time.Since(end))
	if got := s.hub.Count(); got != want {
		t.Errorf("hub.Count() = %d, want %d", got, want)
	}
	seen := map[uint64]string{}
	for i, c := range all {
		events, _ := c.snapshot()
		checkOrder(t, fmt.Sprintf("stream %d", i), events, seen)
	}
	st := s.hub.Stats()
	if st.Opened != total || st.Closed != total-uint64(want) || st.Subscribers != int64(want) {
		t.Errorf("stats %+v, want %d opened, %d closed", st, total, total-want)
	}
	t.Logf("%d streams, %d kept, %d broadcasts", total, want, st.Broadcasts)
}
