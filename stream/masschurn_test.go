package stream

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestMassChurnConverges: rounds of streams leaving and arriving by the
// hundred at once, in random mixes (bulk arrivals held, mass leaves,
// both together, three people holding them all); after each round every
// stream open shows the true user count and people count within the
// contract's second. Without 0bde22c's fix (a held cycle forgets the
// count it last told everyone) it failed in 1 of 20 runs, a stream left
// on a stale count; TestMassReconnectTellsEveryone is that case made
// certain. The seed is logged, to replay a failure.
func TestMassChurnConverges(t *testing.T) {
	const (
		rounds = 8
		most   = 3 * burstNewcomers // streams open at once, at most
	)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	s := newTestServer(t, Config{})
	var open []*sseClient
	holder := map[*sseClient]string{}
	for round := range rounds {
		leave := rng.IntN(len(open) + 1)
		join := rng.IntN(most - len(open) + leave + 1)
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			joined []*sseClient
		)
		for _, c := range open[:leave] {
			wg.Go(c.close)
		}
		for range join {
			who := fmt.Sprintf("person%d", rng.IntN(3))
			wg.Go(func() {
				c := mustDial(t, s.addr(), who, dialOptions{})
				mu.Lock()
				joined = append(joined, c)
				holder[c] = who
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, c := range open[:leave] {
			delete(holder, c)
		}
		open = append(open[leave:], joined...)
		people := map[string]bool{}
		for _, who := range holder {
			people[who] = true
		}
		if !eventually(waitLong, func() bool { return registered(s.hub) == len(open) && s.hub.Stats().Subscribers == int64(len(open)) }) {
			t.Fatalf("round %d: %d registered, want %d", round, registered(s.hub), len(open))
		}
		end := time.Now()
		t.Logf("round %d: %d left, %d joined, %d open", round, leave, join, len(open))
		allShow(t, s, open, len(open), end)
		for i, c := range open {
			if !c.waitUntil(time.Until(end.Add(time.Second)), func(c *sseClient) bool { return c.latestOf(peopleEventName) == len(people) }) {
				t.Fatalf("round %d: stream %d shows %d people a second after the round, want %d", round, i, c.latestOf(peopleEventName), len(people))
			}
		}
	}
}
