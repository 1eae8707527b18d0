package redis

import (
	"math/rand/v2"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/ssetest"
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
	var open []ssetest.Held[*sseStream]
	for round := range rounds {
		var left, joined int
		open, left, joined = ssetest.ChurnRound(rng, open, most, 3, (*sseStream).close,
			func(who string, pick uint64) *sseStream {
				return openStream(t, servers[pick%uint64(len(servers))], who)
			})
		deadline := time.Now().Add(testTTL + testRefresh + slack)
		for held() != int64(len(open)) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the instances hold %d streams, want %d", round, held(), len(open))
			}
			time.Sleep(5 * time.Millisecond) // a poll bounded by the deadline
		}
		end := time.Now()
		t.Logf("round %d: %d left, %d joined, %d open", round, left, joined, len(open))
		for i, h := range open {
			if err := h.Stream.WaitLast(time.Until(end.Add(time.Second)), strconv.Itoa(len(open))); err != nil {
				t.Fatalf("round %d: stream %d a second after the round: %v", round, i, err)
			}
		}
	}
}
