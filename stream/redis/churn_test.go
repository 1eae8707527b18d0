package redis

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/headcount/headcount/stream"
)

// TestMassChurnAcrossInstances: two instances on one Redis, rounds of
// streams leaving and arriving by the hundred at once on either, held by
// three people; after each round every stream on both shows the true
// count, the sum over the instances, within the contract's second. (The
// one-instance form is stream's TestMassChurnConverges.) The seed is
// logged, to replay a failure.
func TestMassChurnAcrossInstances(t *testing.T) {
	const (
		rounds = 6
		most   = 300 // streams open at once, at most
	)
	f := newFixture(t)
	opts := Options{InstanceTTL: testTTL, Refresh: testRefresh}
	var (
		hubs    []*stream.Hub
		servers []*httptest.Server
	)
	for range 2 {
		h, ts := newHub(t, f.counter(t, opts))
		hubs, servers = append(hubs, h), append(servers, ts)
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 2))
	t.Logf("seed %d", seed)
	held := func() int64 {
		var n int64
		for _, h := range hubs {
			n += h.Stats().Subscribers
		}
		return n
	}
	var open []*sseStream
	for round := range rounds {
		leave := rng.IntN(len(open) + 1)
		join := rng.IntN(most - len(open) + leave + 1)
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			joined []*sseStream
		)
		for _, s := range open[:leave] {
			wg.Go(s.close)
		}
		for range join {
			ts, who := servers[rng.IntN(len(servers))], fmt.Sprintf("person%d", rng.IntN(3))
			wg.Go(func() {
				s := openStream(t, ts, who)
				mu.Lock()
				joined = append(joined, s)
				mu.Unlock()
			})
		}
		wg.Wait()
		open = append(open[leave:], joined...)
		deadline := time.Now().Add(testTTL + testRefresh + slack)
		for held() != int64(len(open)) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the instances hold %d streams, want %d", round, held(), len(open))
			}
			time.Sleep(5 * time.Millisecond) // a poll bounded by the deadline
		}
		end := time.Now()
		t.Logf("round %d: %d left, %d joined, %d open", round, leave, join, len(open))
		for i, s := range open {
			if err := s.WaitLast(time.Until(end.Add(time.Second)), strconv.Itoa(len(open))); err != nil {
				t.Fatalf("round %d: stream %d a second after the round: %v", round, i, err)
			}
		}
	}
}
