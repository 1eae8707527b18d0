package redis

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/redistest"
	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/stream"
)

// limitedHub serves a hub of limit streams per user on c.
func limitedHub(t *testing.T, c *Counter, limit int) (*stream.Hub, *httptest.Server) {
	t.Helper()
	return newHubWith(t, stream.Config{Counter: c, MaxStreamsPerUser: limit})
}

// tryStream opens GET /events as user on ts and returns the stream and
// 200, or nil and the status it was refused with.
func tryStream(t *testing.T, ts *httptest.Server, user string) (*sseStream, int) {
	t.Helper()
	s, err := ssetest.Open(t, ts.Client(), ts.URL+"/events", http.Header{"X-User": {user}})
	switch {
	case err == nil:
		return &sseStream{s}, http.StatusOK
	case s != nil && s.Response != nil:
		return nil, s.Response.StatusCode
	default:
		t.Errorf("GET /events as %s: %v", user, err)
		return nil, -1
	}
}

// HEADCOUNT_MAX_STREAMS_PER_USER holds for the sum over every instance: a
// burst of connects by one user against two instances is admitted exactly
// max times in all, the refused ones reserve nothing, a stream that ends
// frees its place at once for the other instance, and the streams of an
// instance that dies stop counting as soon as it is found dead.
func TestPerUserLimitAcrossInstances(t *testing.T) {
	const limit = 8
	f := ownFixture(redistest.Start(t).URL())
	a := f.counter(t, Options{InstanceTTL: time.Minute})
	b := f.counter(t, Options{InstanceTTL: time.Minute})
	hubA, tsA := limitedHub(t, a, limit)
	hubB, tsB := limitedHub(t, b, limit)

	// The burst: 60 connects at once, alternating instances.
	var (
		mu       sync.Mutex
		admitted []*sseStream
		refused  atomic.Int32
		wg       sync.WaitGroup
	)
	for i := range 60 {
		ts := tsA
		if i%2 == 1 {
			ts = tsB
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, status := tryStream(t, ts, "alice")
			switch status {
			case http.StatusOK:
				mu.Lock()
				admitted = append(admitted, s)
				mu.Unlock()
			case http.StatusTooManyRequests:
				refused.Add(1)
			default:
				t.Errorf("a connect answered %d", status)
			}
		}()
	}
	wg.Wait()
	if len(admitted) != limit || refused.Load() != 60-limit {
		t.Fatalf("the burst admitted %d and refused %d, want %d and %d", len(admitted), refused.Load(), limit, 60-limit)
	}
	if got := hubA.Stats().Subscribers + hubB.Stats().Subscribers; got != limit {
		t.Fatalf("%d streams open on both instances, want %d", got, limit)
	}
	// Refusals left nothing behind: Redis holds exactly the open streams.
	client := newTestClient(t, f.url)
	if n, err := client.HGet(t.Context(), tagged(f.prefix)+":people", "alice").Int(); err != nil || n != limit {
		t.Fatalf("Redis counts %d (%v) streams of alice, want %d", n, err, limit)
	}

	// Every stream ends: nothing stays reserved.
	for _, s := range admitted {
		s.close()
	}
	eventually(t, 2*time.Second, "alice's streams gone from Redis", func() error {
		if n, err := client.HGet(t.Context(), tagged(f.prefix)+":people", "alice").Int(); err == nil {
			return fmt.Errorf("%d left", n)
		}
		return nil
	})

	// Now in order: limit-2 on A, 2 on B, and neither admits more.
	var onA []*sseStream
	for i := range limit {
		ts := tsA
		if i >= limit-2 {
			ts = tsB
		}
		s, status := tryStream(t, ts, "alice")
		if status != http.StatusOK {
			t.Fatalf("stream %d of alice: %d, want 200", i+1, status)
		}
		if ts == tsA {
			onA = append(onA, s)
		}
	}
	for _, ts := range []*httptest.Server{tsA, tsB} {
		if _, status := tryStream(t, ts, "alice"); status != http.StatusTooManyRequests {
			t.Fatalf("at the limit: %d, want 429", status)
		}
	}
	// One ends on A: B admits one at once.
	onA[0].close()
	eventually(t, 2*time.Second, "B admits alice again after a stream on A ended", func() error {
		if _, status := tryStream(t, tsB, "alice"); status != http.StatusOK {
			return errors.New(http.StatusText(status))
		}
		return nil
	})
	if _, status := tryStream(t, tsA, "alice"); status != http.StatusTooManyRequests {
		t.Fatalf("A at the limit answered %d, want 429", status)
	}

	// B dies with its three streams: once it is found dead (its
	// connection closed), A admits alice up to the limit again.
	if err := b.shutdown(false); err != nil {
		t.Fatal(err)
	}
	open := len(onA) - 1
	eventually(t, 3*time.Second, "A admits alice in B's place", func() error {
		for open < limit {
			if _, status := tryStream(t, tsA, "alice"); status != http.StatusOK {
				return errors.New(http.StatusText(status))
			}
			open++
		}
		return nil
	})
	if _, status := tryStream(t, tsA, "alice"); status != http.StatusTooManyRequests {
		t.Fatalf("A at the limit after B's death answered %d, want 429", status)
	}
}

// During an outage the limiter cannot tell, so each instance holds to its
// own, local, limit; once Redis answers, what it holds is written back.
func TestPerUserLimitDuringOutage(t *testing.T) {
	const limit = 3
	f := ownFixture(redistest.Start(t).URL())
	p, viaProxy := newProxy(t, f)
	a := f.counter(t, Options{InstanceTTL: time.Minute}, viaProxy)
	_, tsA := limitedHub(t, a, limit)

	p.SetFrozen(true)
	for range limit {
		if _, status := tryStream(t, tsA, "bob"); status != http.StatusOK {
			t.Fatalf("a connect during the outage answered %d, want 200 (the local limit)", status)
		}
	}
	if _, status := tryStream(t, tsA, "bob"); status != http.StatusTooManyRequests {
		t.Fatalf("past the local limit during the outage: %d, want 429", status)
	}
	p.SetFrozen(false)
	client := newTestClient(t, f.url)
	eventually(t, 5*time.Second, "Redis holds bob's streams after the outage", func() error {
		n, err := client.HGet(t.Context(), tagged(f.prefix)+":people", "bob").Int()
		if err != nil || n != limit {
			return errors.New("not yet")
		}
		return nil
	})
}

// A burst of joins queues its limit checks behind each other, never in
// front of the hub's Store: the count never turns partial for it, and
// every stream is counted once in Redis afterwards.
func TestJoinBurstIsNoOutage(t *testing.T) {
	const streams, users = 300, 30
	f := ownFixture(redistest.Start(t).URL())
	a := f.counter(t, Options{InstanceTTL: time.Minute})
	hub, ts := limitedHub(t, a, 32)

	var partial atomic.Bool
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if hub.Stats().Partial {
					partial.Store(true)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, status := tryStream(t, ts, fmt.Sprintf("user%d", i%users)); status != http.StatusOK {
				t.Errorf("join %d: %d", i, status)
			}
		}()
	}
	wg.Wait()
	eventuallyTrue(t, 5*time.Second, "every stream counted", func() bool { return hub.Count() == streams })
	close(stop)
	<-watched
	if partial.Load() {
		t.Error("the count turned partial during a burst of joins")
	}
	client := newTestClient(t, f.url)
	vals, err := client.HVals(t.Context(), tagged(f.prefix)+":people").Result()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, v := range vals {
		n := 0
		fmt.Sscan(v, &n)
		sum += n
	}
	if sum != streams || len(vals) != users {
		t.Errorf("Redis holds %d streams of %d people, want %d of %d", sum, len(vals), streams, users)
	}
}
