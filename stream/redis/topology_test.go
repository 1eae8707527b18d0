package redis

import (
	"context"
	"errors"
	"github.com/headcount/headcount/internal/poll"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/redistest"
	"github.com/headcount/headcount/stream"
)

// ownFixture is a fixture on a Redis (or topology) the test started: its
// processes end with the test, so nothing needs deleting.
func ownFixture(url string) fixture {
	return fixture{url: url, prefix: "headcount-test"}
}

// Every URL form SPEC names builds the client of its topology, and a bad
// one is refused with a reason that never repeats the password. None of
// these needs a Redis.
func TestURLForms(t *testing.T) {
	for _, tt := range []struct {
		url, kind, where, err string
	}{
		{url: "redis://127.0.0.1:6379/2", kind: "redis", where: "127.0.0.1:6379"},
		{url: "rediss://:hunter2@cache.example:6380", kind: "redis", where: "cache.example:6380"},
		{url: "redis+sentinel://:hunter2@10.0.0.1:26379,10.0.0.2:26379,[::1]:26379/3?master=main", kind: "sentinel", where: "main@10.0.0.1:26379,10.0.0.2:26379,[::1]:26379"},
		{url: "redis+sentinel://10.0.0.1:26379?master=main&sentinel_password=s3cret", kind: "sentinel", where: "main@10.0.0.1:26379"},
		{url: "redis+cluster://user:hunter2@10.0.0.1:7000,10.0.0.2:7001", kind: "cluster", where: "10.0.0.1:7000,10.0.0.2:7001"},
		{url: "redis+sentinel://10.0.0.1:26379", err: "master"},
		{url: "redis+sentinel://10.0.0.1:26379?master=m&mastr=x", err: `unknown parameter "mastr"`},
		{url: "redis+cluster://10.0.0.1:7000,10.0.0.2", err: "not host:port"},
		{url: "redis+cluster://:hunter2@10.0.0.1:7000/1", err: "database 0"},
		{url: "redis+cluster://10.0.0.1:99999", err: "bad port"},
		{url: "redis+cluster://10.0.0.1:7000?db=1", err: "unknown parameter"},
		{url: "redis+sentinel://10.0.0.1:26379/x?master=m", err: "database"},
		{url: "127.0.0.1:6379", err: "no scheme"},
		{url: "http://127.0.0.1:6379", err: "scheme"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			topo, err := dial(tt.url, "test")
			if tt.err != "" {
				if err == nil {
					_ = topo.client.Close()
					t.Fatalf("accepted, want an error about %q", tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error %q: want it to mention %q and no password", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer topo.client.Close()
			if topo.kind != tt.kind || topo.where != tt.where {
				t.Errorf("got %s %s, want %s %s", topo.kind, topo.where, tt.kind, tt.where)
			}
		})
	}
}

// The prefix becomes a hash tag unless it holds one already.
func TestPrefixIsOneHashSlot(t *testing.T) {
	for in, want := range map[string]string{
		"headcount":        "{headcount}",
		"app:{eu}":         "app:{eu}",
		"odd{}":            "{odd{}}",
		"half{open":        "{half{open}",
		"{blue}:headcount": "{blue}:headcount",
	} {
		if got := tagged(in); got != want {
			t.Errorf("tagged(%q) = %q, want %q", in, got, want)
		}
	}
}

// A counter whose connection closes (its process died: the kernel closes
// its sockets) leaves the others' count within two seconds, though its
// deadline is a minute away; plain and sharded Pub/Sub alike.
func TestClosedConnectionLeavesWithinTwoSeconds(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(map[bool]string{false: "sharded", true: "plain"}[plain], func(t *testing.T) {
			f := ownFixture(redistest.Start(t).URL())
			opts := Options{InstanceTTL: time.Minute, plainPubSub: plain}
			a := f.counter(t, opts)
			b := f.counter(t, opts)
			if a.sharded == plain {
				t.Fatalf("sharded = %v with plainPubSub %v on Redis 7", a.sharded, plain)
			}
			mustStore(t, a, 3, 3)
			mustStore(t, b, 2, 5)
			drain(a)
			start := time.Now()
			if err := b.shutdown(false); err != nil {
				t.Fatalf("killing b: %v", err)
			}
			awaitGlobal(t, a, 3, 3, 2*time.Second)
			t.Logf("dropped %v after its connection closed", time.Since(start))
		})
	}
}

// A counter whose connection stays open but that answers nothing (a
// frozen process, a network that silently drops everything) is dropped
// when its deadline passes, and not before: a pause shorter than the
// deadline costs nothing. When it thaws, its count comes back.
func TestFrozenInstanceLeavesByItsDeadline(t *testing.T) {
	f := ownFixture(redistest.Start(t).URL())
	const ttl, refresh = 1500 * time.Millisecond, 300 * time.Millisecond
	p, viaProxy := newProxy(t, f)
	a := f.counter(t, Options{InstanceTTL: ttl, Refresh: refresh})
	b := f.counter(t, Options{InstanceTTL: ttl, Refresh: refresh}, viaProxy)
	mustStore(t, a, 3, 3)
	mustStore(t, b, 2, 5)

	// A short pause (a GC pause, a slow reply): nobody drops b. Checked
	// while b is still frozen: after the thaw its own refresh would put
	// its count back and hide a drop. b's deadline is at least
	// ttl - refresh after the freeze began, 700 ms past this check.
	p.SetFrozen(true)
	time.Sleep(ttl / 3)
	mustStore(t, a, 3, 5)
	p.SetFrozen(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.Ping(ctx); err != nil {
		t.Logf("b's ping right after the pause: %v", err)
	}

	// A long one: b is dropped by its deadline, not by its connection.
	drain(a)
	start := time.Now()
	p.SetFrozen(true)
	took := awaitGlobal(t, a, 3, 3, ttl+2*refresh+5*slack)
	if took < ttl-refresh {
		t.Errorf("the frozen instance was dropped after %v, before its deadline (%v)", took, ttl)
	}
	t.Logf("frozen instance dropped after %v (InstanceTTL %v)", time.Since(start), ttl)

	p.SetFrozen(false)
	awaitGlobal(t, a, 3, 5, 5*slack)
}

// While Redis refuses or hangs, Store answers at once with the last
// global count corrected by the local changes since, wrapping
// stream.ErrPartial; Ping says so within a second; once Redis answers,
// the counter converges by itself.
func TestOutageAnswersFromMemory(t *testing.T) {
	for _, mode := range []string{"refused", "hung"} {
		t.Run(mode, func(t *testing.T) {
			f := ownFixture(redistest.Start(t).URL())
			p, viaProxy := newProxy(t, f)
			a := f.counter(t, Options{InstanceTTL: time.Minute}, viaProxy)
			b := f.counter(t, Options{InstanceTTL: time.Minute})
			mustStore(t, a, 3, 3)
			mustStore(t, b, 2, 5)
			mustStore(t, a, 3, 5)
			if mode == "refused" {
				p.SetCut(true)
			} else {
				p.SetFrozen(true)
			}
			for _, tc := range []struct{ local, want int }{{4, 6}, {5, 7}, {0, 2}, {1, 3}} {
				start := time.Now()
				got, err := a.Store(context.Background(), tc.local)
				if !errors.Is(err, stream.ErrPartial) {
					t.Fatalf("Store(%d) during the outage: %v, want ErrPartial", tc.local, err)
				}
				if got != tc.want {
					t.Errorf("Store(%d) during the outage = %d, want %d (5 known, 3 of them local)", tc.local, got, tc.want)
				}
				if took := time.Since(start); took > time.Second {
					t.Errorf("Store took %v during the outage", took)
				}
			}
			start := time.Now()
			if err := a.Ping(context.Background()); err == nil {
				t.Error("Ping succeeded during the outage")
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("Ping took %v during the outage", took)
			}

			p.SetCut(false)
			p.SetFrozen(false)
			awaitGlobal(t, b, 2, 3, 5*time.Second)
			awaitGlobal(t, a, 1, 3, 5*time.Second)
			if err := a.Ping(context.Background()); err != nil {
				t.Errorf("Ping after the outage: %v", err)
			}
		})
	}
}

// A Redis that answers PING but refuses writes (a replica's READONLY,
// maxmemory's OOM) is an outage: Ping fails naming it and Store is
// partial; once writes work again, so does the counter.
func TestWriteRefusalIsAnOutage(t *testing.T) {
	srv := redistest.Start(t)
	f := ownFixture(srv.URL())
	c := f.counter(t, Options{InstanceTTL: time.Minute})
	mustStore(t, c, 1, 1)
	for _, tc := range []struct {
		name      string
		on, off   [][]string
		errorName string
	}{
		{"replica", [][]string{{"REPLICAOF", "127.0.0.1", closedPort(t)[len("127.0.0.1:"):]}}, [][]string{{"REPLICAOF", "NO", "ONE"}}, "READONLY"},
		{"maxmemory", [][]string{{"CONFIG", "SET", "maxmemory-policy", "noeviction"}, {"CONFIG", "SET", "maxmemory", "1"}}, [][]string{{"CONFIG", "SET", "maxmemory", "0"}}, "OOM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range tc.on {
				srv.MustDo(cmd...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := c.Ping(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.errorName) {
				t.Errorf("Ping with writes refused: %v, want an error naming %s", err, tc.errorName)
			}
			if _, err := c.Store(ctx, 2); !errors.Is(err, stream.ErrPartial) {
				t.Errorf("Store with writes refused: %v, want ErrPartial", err)
			}
			for _, cmd := range tc.off {
				srv.MustDo(cmd...)
			}
			// Each Ping with a context of its own: the one above may be spent.
			eventually(t, 5*time.Second, "Ping after writes work again", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				return c.Ping(ctx)
			})
			mustStore(t, c, 1, 1)
		})
	}
}

// Through Sentinel: two counters share the sum, a forced failover
// (SENTINEL FAILOVER) costs neither its place in the count, and afterwards
// changes still reach the other at once, through the new master.
//
// go-redis' own lines (it logs Sentinel's master switches) arrive through
// the slog logger given to SetLibraryLogger, not raw on stderr.
func TestSentinelFailover(t *testing.T) {
	// A file: safe for go-redis' goroutines to write while the test reads.
	lib, err := os.Create(filepath.Join(t.TempDir(), "go-redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	SetLibraryLogger(slog.New(slog.NewTextHandler(lib, nil)))
	t.Cleanup(func() { SetLibraryLogger(slog.New(slog.DiscardHandler)) })
	set := redistest.StartSentinel(t)
	f := ownFixture(set.URL())
	opts := Options{InstanceTTL: 3 * time.Second}
	a := f.counter(t, opts)
	b := f.counter(t, opts)
	mustStore(t, a, 3, 3)
	mustStore(t, b, 2, 5)
	if !a.sharded {
		t.Error("sharded Pub/Sub not used on Redis 7")
	}

	old := set.Master(t)
	next := set.Failover(t)
	t.Logf("failover from %s to %s", old.Addr, next.Addr)

	// Both write to the new master by themselves (their keepers do).
	eventually(t, 10*time.Second, "both counts on the new master", func() error {
		out, err := next.Do("HVALS", tagged(f.prefix)+":counts")
		if err != nil {
			return err
		}
		if vals := strings.Fields(out); len(vals) != 2 {
			return errors.New("counts: " + out)
		}
		return nil
	})
	drain(a)
	mustStore(t, b, 4, 7)
	awaitGlobal(t, a, 3, 7, 5*time.Second)
	drain(b)
	mustStore(t, a, 1, 5)
	awaitGlobal(t, b, 4, 5, 5*time.Second)

	// The subscriptions moved too: a's death by closed connection is seen
	// on the new master within two seconds.
	drain(b)
	if err := a.shutdown(false); err != nil {
		t.Fatal(err)
	}
	awaitGlobal(t, b, 4, 4, 2*time.Second)

	raw, _ := os.ReadFile(lib.Name())
	if out := string(raw); !strings.Contains(out, `msg="go-redis: sentinel: new master`) || !strings.Contains(out, "source=go-redis") {
		t.Errorf("go-redis' log did not come through slog:\n%s", out)
	}
}

// On a three-master Cluster: every key and channel of the deployment is in
// one slot, two counters share the sum over sharded Pub/Sub, the people
// and the per-user limit work, and a dead one is dropped (with its
// streams) within two seconds; plain Pub/Sub works too.
func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	for _, plain := range []bool{false, true} {
		t.Run(map[bool]string{false: "sharded", true: "plain"}[plain], func(t *testing.T) {
			f := ownFixture(cl.URL())
			f.prefix += map[bool]string{false: "-sharded", true: "-plain"}[plain]
			opts := Options{InstanceTTL: time.Minute, plainPubSub: plain}
			a := f.counter(t, opts)
			b := f.counter(t, opts)
			mustStore(t, a, 3, 3)
			drain(a)
			mustStore(t, b, 2, 5)
			awaitGlobal(t, a, 3, 5, 2*time.Second)

			node := cl.NodeFor(t, a.keys[0])
			for _, k := range append(a.keys[1:], a.channel, a.alive, b.alive) {
				if n := cl.NodeFor(t, k); n != node {
					t.Errorf("%s is on %s, the counts on %s", k, n.Addr, node.Addr)
				}
			}

			// Who is online and the per-user limit run their scripts in the
			// same slot (their per-instance keys are not declared ones).
			ada := stream.Person{ID: "7", Login: "ada"}
			for i, c := range []*Counter{a, b, a} {
				err := c.Acquire(t.Context(), ada, 2)
				if want := i < 2; (err == nil) != want {
					t.Fatalf("Acquire %d: %v, want admitted %v", i+1, err, want)
				}
			}
			if got := storePeople(t, a, nil, false, 0); len(got.People) != 1 || got.People[0].Streams != 2 {
				t.Fatalf("who is online on the Cluster: %+v, want ada with 2 streams", got)
			}

			drain(a)
			if err := b.shutdown(false); err != nil {
				t.Fatal(err)
			}
			awaitGlobal(t, a, 3, 3, 2*time.Second)
			// b's stream of ada went with it.
			if err := a.Acquire(t.Context(), ada, 2); err != nil {
				t.Fatalf("Acquire after b died: %v", err)
			}
		})
	}
}

// eventually polls cond every 50 ms until it returns nil or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	var err error
	if poll.Until(within, func() bool { err = cond(); return err == nil }) != nil {
		t.Fatalf("%s: not within %v: %v", what, within, err)
	}
}
