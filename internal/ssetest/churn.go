package ssetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// Held is a stream of a churn round and the person holding it.
type Held[S any] struct {
	Stream S
	Person string
}

// ChurnRound is one round of mass churn: a random share of open leaves
// (each by leave) while a random number of streams arrive (each by
// join, as one of people persons, "person0" on, with a random pick for
// whatever else the caller chooses, such as an instance), all at once,
// so that at most most are open afterwards. It returns the streams open
// then, the oldest first, and how many left and joined. rng is used on
// the caller's goroutine only.
func ChurnRound[S any](rng *rand.Rand, open []Held[S], most, people int, leave func(S), join func(person string, pick uint64) S) (after []Held[S], left, joined int) {
	left = rng.IntN(len(open) + 1)
	joined = rng.IntN(most - len(open) + left + 1)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		add []Held[S]
	)
	for _, h := range open[:left] {
		wg.Go(func() { leave(h.Stream) })
	}
	for range joined {
		who, pick := fmt.Sprintf("person%d", rng.IntN(people)), rng.Uint64()
		wg.Go(func() {
			s := join(who, pick)
			mu.Lock()
			add = append(add, Held[S]{Stream: s, Person: who})
			mu.Unlock()
		})
	}
	wg.Wait()
	return append(open[left:], add...), left, joined
}

// People is how many persons hold the streams.
func People[S any](held []Held[S]) int {
	seen := map[string]bool{}
	for _, h := range held {
		seen[h.Person] = true
	}
	return len(seen)
}
