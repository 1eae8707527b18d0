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
	const (
		total   = 500
		workers = 50
	)
	s := newTestServer(t, Config{})

	var (
		mu      sync.Mutex
		kept    []*sseClient
		all     []*sseClient
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
				c, err := dialStream(t, s.addr(), fmt.Sprintf("user%d", i%37), dialOptions{local: fmt.Sprintf("127.0.0.%d", 1+i%4)})
				if err == nil && c.resp.StatusCode != 200 {
					err = fmt.Errorf("stream %d: status %d", i, c.resp.StatusCode)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					all = append(all, c)
				}
				mu.Unlock()
				if err != nil {
					continue
				}
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
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d streams failed, first: %v", len(errs), errs[0])
	}
	want := len(kept)

	end := time.Now()
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
