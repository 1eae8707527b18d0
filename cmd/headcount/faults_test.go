//go:build unix

package main

import (
	"github.com/headcount/headcount/internal/poll"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/redistest"
	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/stream"
)

// sharedSecret is what every instance of a fault test shares.
const sharedSecret = "fault-test-secret-0123456789abcdef0123456789"

// pair is two headcount processes sharing one Redis of the test's own,
// the first one through a proxy the test controls.
type pair struct {
	redis  *redistest.Server
	proxy  *redistest.Proxy
	a, b   *process
	ca, cb *http.Client
	// watch is a stream on b that sees every change of the global count.
	watch *sseStream
}

// startPair starts Redis, a proxy to it, instance a through the proxy and
// instance b directly, and opens a watching stream on b.
func startPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{redis: redistest.Start(t)}
	p.proxy = redistest.NewProxy(t, p.redis.Addr)
	p.a = p.startInstance(t, "redis://"+p.proxy.Addr())
	p.b = p.startInstance(t, p.redis.URL())
	p.ca, p.cb = newClient(t, p.a.addr), newClient(t, p.b.addr)
	p.watch = openStream(t, p.cb, p.b.url, signIn(t, p.cb, p.b.url, "watcher").token)
	return p
}

func (p *pair) startInstance(t *testing.T, redisURL string) *process {
	t.Helper()
	return startProcess(t, map[string]string{
		"HEADCOUNT_REDIS_URL":            redisURL,
		"HEADCOUNT_SESSION_SECRET":       sharedSecret,
		"HEADCOUNT_MAX_STREAMS_PER_USER": strconv.Itoa(perUserLimit),
	})
}

// perUserLimit is HEADCOUNT_MAX_STREAMS_PER_USER of the fault tests.
const perUserLimit = 6

// HEADCOUNT_MAX_STREAMS_PER_USER holds for the sum over both instances: of
// a burst of connects by one user, alternating instances, exactly the
// limit is admitted and the rest get 429.
func TestProcessPerUserLimitAcrossInstances(t *testing.T) {
	p := startPair(t)
	tok := signIn(t, p.ca, p.a.url, "greedy").token
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 40 {
		c, base := p.ca, p.a.url
		if i%2 == 1 {
			c, base = p.cb, p.b.url
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := ssetest.Open(t, c, base+"/events", http.Header{"Authorization": {"Bearer " + tok}})
			status := -1
			switch {
			case err == nil:
				status = http.StatusOK
			case s != nil && s.Response != nil:
				status = s.Response.StatusCode
			}
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[http.StatusOK] != perUserLimit || statuses[http.StatusTooManyRequests] != 40-perUserLimit {
		t.Fatalf("statuses %v, want %d × 200 and %d × 429", statuses, perUserLimit, 40-perUserLimit)
	}
	awaitCount(t, p.watch, 1+perUserLimit, 2*time.Second, "the admitted streams")
}

// awaitCount waits until s's latest count is want, failing after within;
// it returns how long that took.
func awaitCount(t *testing.T, s *sseStream, want int, within time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	if err := s.WaitLast(within, strconv.Itoa(want)); err != nil {
		t.Fatalf("%s: want the count %d within %v: %v", what, want, within, err)
	}
	return time.Since(start)
}

// readyz returns /readyz's status and how long it took to answer.
func readyz(t *testing.T, c *http.Client, base string) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, _ := fetch(t, c, newRequest(t, http.MethodGet, base+"/readyz", nil))
	return resp.StatusCode, time.Since(start)
}

// crashRuns is how many SIGKILLs TestProcessKilledLeavesWithinTwoSeconds
// measures: HEADCOUNT_CRASH_RUNS, or 1 (docs/benchmarks.md has ten).
func crashRuns(t *testing.T) int {
	if n, err := strconv.Atoi(os.Getenv("HEADCOUNT_CRASH_RUNS")); err == nil && n > 0 {
		return n
	}
	return 1
}

// A SIGKILLed instance says no goodbye, but the kernel closes its Redis
// connections: the survivor's subscribers see its streams and its people
// leave the counts within two seconds, far inside the six-second deadline.
func TestProcessKilledLeavesWithinTwoSeconds(t *testing.T) {
	p := startPair(t)
	var took []time.Duration
	for run := range crashRuns(t) {
		victim := p.startInstance(t, p.redis.URL())
		c := newClient(t, victim.addr)
		tok := signIn(t, c, victim.url, "victim").token
		openStream(t, c, victim.url, tok)
		openStream(t, c, victim.url, tok)
		awaitCount(t, p.watch, 3, 5*time.Second, "two streams on the victim")

		start := time.Now()
		if err := victim.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		awaitCount(t, p.watch, 1, 2*time.Second, "after SIGKILL")
		took = append(took, time.Since(start))
		// Its people leave too (after the hub's leave grace).
		if err := p.watch.WaitLastOf(2*time.Second-time.Since(start)+stream.DefaultLeaveGrace, "people count", "1"); err != nil {
			t.Fatalf("the killed instance's people: %v", err)
		}
		t.Logf("run %d: the killed instance left the count after %v", run+1, took[run])
		<-victim.exited
	}
	if len(took) > 1 {
		slices.Sort(took)
		t.Logf("%d SIGKILLs: median %v, worst %v", len(took), took[len(took)/2], took[len(took)-1])
	}
}

// A frozen instance (SIGSTOP) keeps its connections open, so only its
// deadline shows it dead: it leaves within ten seconds, not within a
// pause of two (a GC pause or a slow Redis costs a live instance
// nothing). Thawed (SIGCONT), it counts again within five seconds.
func TestProcessFrozenLeavesWithinTenSeconds(t *testing.T) {
	t.Parallel() // it mostly waits for the deadline; its Redis is its own
	p := startPair(t)
	tok := signIn(t, p.ca, p.a.url, "ann").token
	openStream(t, p.ca, p.a.url, tok)
	awaitCount(t, p.watch, 2, 5*time.Second, "a stream on a")

	if err := p.a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.a.cmd.Process.Signal(syscall.SIGCONT) })
	start := time.Now()
	if err := p.watch.WaitLast(2*time.Second, "1"); err == nil {
		t.Fatalf("a frozen instance was dropped after %v, before its deadline", time.Since(start))
	}
	awaitCount(t, p.watch, 1, 10*time.Second-time.Since(start), "a frozen")
	t.Logf("the frozen instance left the count after %v", time.Since(start))

	if err := p.a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	awaitCount(t, p.watch, 2, 5*time.Second, "a thawed")
}

// Every Redis fault, seen from outside through two processes. During each,
// the instance that suffers it answers /readyz 503 within a second, says
// /api/count is partial, keeps its open streams, and gives a new stream
// its first count within a second (its best knowledge); the log says what
// happened; its streams are told "count state: partial". When the fault
// ends, every subscriber on both instances sees the true count within five
// seconds. Last, SIGTERM during an outage
// exits 0 within five seconds, logging the failed removal.
func TestProcessRedisFaults(t *testing.T) {
	p := startPair(t)
	tok := signIn(t, p.ca, p.a.url, "ann").token
	ann := openStream(t, p.ca, p.a.url, tok)
	awaitCount(t, p.watch, 2, 5*time.Second, "a stream on a")

	faults := []struct {
		name     string
		on, off  func()
		mentions string // in the log line of the instance that suffers it
		victims  []*process
	}{
		{name: "network cut, connections reset", on: func() { p.proxy.SetCut(true) }, off: func() { p.proxy.SetCut(false) }, mentions: "redis: ", victims: []*process{p.a}},
		{name: "network silent", on: func() { p.proxy.SetFrozen(true) }, off: func() { p.proxy.SetFrozen(false) }, mentions: "deadline exceeded", victims: []*process{p.a}},
		{name: "Redis killed and restarted empty", on: p.redis.Kill, off: p.redis.Restart, mentions: "redis: ", victims: []*process{p.a, p.b}},
		{name: "Redis hung", on: func() { p.redis.Signal(syscall.SIGSTOP) }, off: func() { p.redis.Signal(syscall.SIGCONT) }, mentions: "deadline exceeded", victims: []*process{p.a, p.b}},
		{name: "read-only replica", on: func() { p.redis.MustDo("REPLICAOF", "127.0.0.1", "1") }, off: func() { p.redis.MustDo("REPLICAOF", "NO", "ONE") }, mentions: "READONLY", victims: []*process{p.a, p.b}},
		{name: "maxmemory", on: func() {
			p.redis.MustDo("CONFIG", "SET", "maxmemory-policy", "noeviction")
			p.redis.MustDo("CONFIG", "SET", "maxmemory", "1")
		}, off: func() { p.redis.MustDo("CONFIG", "SET", "maxmemory", "0") }, mentions: "OOM", victims: []*process{p.a, p.b}},
	}
	streams := []*sseStream{ann}
	want := 2
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("a's log:\n%s\nb's log:\n%s", p.a.stdout, p.b.stdout)
		}
	})
	outer := t // the streams opened during a fault outlive its subtest
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			logged := map[*process]int{}
			for _, v := range f.victims {
				logged[v] = len(v.stdout.records())
			}
			f.on()
			for i, v := range f.victims {
				c := newClient(outer, v.addr)
				vtok := signIn(t, c, v.url, "during").token
				var status int
				if poll.Until(5*time.Second, func() bool {
					var took time.Duration
					status, took = readyz(t, c, v.url)
					if took > time.Second {
						t.Errorf("/readyz took %v", took)
					}
					return status == http.StatusServiceUnavailable
				}) != nil {
					t.Fatalf("/readyz %d during the fault, want 503", status)
				}
				start := time.Now()
				s := openStream(outer, c, v.url, vtok)
				if took := time.Since(start); took > time.Second {
					t.Errorf("a new stream's first count took %v during the fault", took)
				}
				want++
				// Best knowledge: all but the streams the earlier victims
				// opened during this fault, which it cannot know of.
				if s.first != want-i {
					t.Errorf("a new stream's first count is %d, want %d", s.first, want-i)
				}
				if !readCount(t, c, v.url, vtok).Partial {
					t.Error("/api/count does not say the count is partial")
				}
				if err := s.WaitLastOf(time.Second, "count state", "partial"); err != nil {
					t.Errorf("the new stream is not told its count is partial: %v", err)
				}
				streams = append(streams, s)
				var said []string
				for _, r := range v.stdout.records()[logged[v]:] {
					if r["msg"] == "redis: the shared count is unavailable (Redis unreachable, too slow or refusing writes); serving this instance's best knowledge until it answers" {
						said = append(said, r["err"])
					}
				}
				if len(said) != 1 || !strings.Contains(said[0], f.mentions) {
					t.Errorf("want one log line of the outage naming %q, got %q", f.mentions, said)
				}
			}
			f.off()
			start := time.Now()
			for i, s := range append(streams, p.watch) {
				if err := s.WaitLast(5*time.Second-time.Since(start), strconv.Itoa(want)); err != nil {
					t.Fatalf("stream %d after the fault: %v", i, err)
				}
				// watcher, ann and "during" (one person on both instances).
				if err := s.WaitLastOf(5*time.Second-time.Since(start), "people count", "3"); err != nil {
					t.Fatalf("stream %d's people count after the fault: %v", i, err)
				}
			}
			for _, v := range []*process{p.a, p.b} {
				c, status := newClient(t, v.addr), 0
				if poll.Until(2*time.Second, func() bool {
					status, _ = readyz(t, c, v.url)
					return status == http.StatusOK
				}) != nil {
					t.Fatalf("/readyz %d after the fault", status)
				}
			}
			if ended, why := ann.Ended(); ended {
				t.Fatalf("a stream open before the fault ended: %v", why)
			}
		})
	}

	// SIGTERM during an outage: exit 0 within five seconds.
	p.redis.Signal(syscall.SIGSTOP)
	defer p.redis.Signal(syscall.SIGCONT)
	for _, v := range []*process{p.a, p.b} {
		if err := v.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []*process{p.a, p.b} {
		select {
		case <-v.exited:
		case <-time.After(stopLimit):
			t.Fatalf("still running %v after SIGTERM during an outage; stdout:\n%s", stopLimit, v.stdout)
		}
		if v.err != nil {
			t.Errorf("exited with %v after SIGTERM during an outage, want 0; stderr:\n%s", v.err, v.stderr)
		}
		if _, ok := v.stdout.find("could not remove this instance's share of the count; the other instances drop it by themselves"); !ok {
			t.Errorf("the failed removal is not logged; stdout:\n%s", v.stdout)
		}
		if s := v.stderr.String(); s != "" {
			t.Errorf("stderr (go-redis must log through slog): %q", s)
		}
	}
}
