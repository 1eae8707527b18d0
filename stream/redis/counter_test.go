package redis

import (
	"context"
	"errors"
	"github.com/headcount/headcount/internal/poll"
	"github.com/headcount/headcount/stream"
	"strings"
	"testing"
	"time"
)

// Two instances on one prefix see the sum of their counts, and each one's
// Changes fires when the other stores a new count. Refresh and the
// liveness check are long, so only the change message can explain a
// signal within two seconds.
func TestCountersShareTheSum(t *testing.T) {
	f := newFixture(t)
	opts := Options{InstanceTTL: time.Minute, Check: 10 * time.Second}
	a := f.counter(t, opts)
	b := f.counter(t, opts)

	mustStore(t, a, 3, 3)
	drain(a)
	mustStore(t, b, 2, 5)
	awaitGlobal(t, a, 3, 5, 2*time.Second)

	drain(b)
	mustStore(t, a, 4, 6)
	awaitGlobal(t, b, 2, 6, 2*time.Second)

	// Back to nothing on both: a zero count is a count like any other.
	mustStore(t, a, 0, 2)
	awaitGlobal(t, b, 0, 0, 2*time.Second)
}

// An instance that dies without Close (its process killed: no refresh, no
// goodbye) leaves the sum within InstanceTTL + Refresh, and the survivor's
// Changes fires without anyone storing anything there.
func TestDeadInstanceIsDropped(t *testing.T) {
	f := newFixture(t)
	opts := Options{InstanceTTL: testTTL, Refresh: testRefresh}
	a := f.counter(t, opts)
	b := f.counter(t, opts)
	mustStore(t, a, 3, 3)
	mustStore(t, b, 2, 5)

	drain(a)
	if err := b.shutdown(false); err != nil {
		t.Fatalf("killing b: %v", err)
	}
	took := awaitGlobal(t, a, 3, 3, testTTL+testRefresh+5*slack)
	if limit := testTTL + testRefresh + slack; took > limit {
		t.Errorf("the dead instance left the count after %v, want at most %v", took, limit)
	}
	t.Logf("dead instance dropped after %v (InstanceTTL %v, Refresh %v)", took, testTTL, testRefresh)

	// It stays dropped: the survivor's refreshes do not bring it back.
	mustStore(t, a, 3, 3)
}

// Close takes the instance's count out at once, not after InstanceTTL, and
// the others hear of it; a closed Counter refuses work.
func TestCloseRemovesTheCountAtOnce(t *testing.T) {
	f := newFixture(t)
	opts := Options{InstanceTTL: time.Minute} // only Close can explain a prompt drop
	a := f.counter(t, opts)
	b := f.counter(t, opts)
	mustStore(t, a, 3, 3)
	mustStore(t, b, 2, 5)

	drain(a)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	awaitGlobal(t, a, 3, 3, 2*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := b.Store(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Store after Close: %v, want ErrClosed", err)
	}
	if err := b.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// When the last instance leaves, nothing of the prefix stays in Redis
	// for ever (a person is online on it, so there are people keys too).
	if _, err := a.StorePeople(ctx, []stream.PersonStreams{{Person: stream.Person{ID: "1", Login: "ada"}, Streams: 1}}, true, 0); err != nil {
		t.Fatalf("StorePeople: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	client := newTestClient(t, f.url)
	n, err := client.Exists(ctx, tagged(f.prefix)+":counts", tagged(f.prefix)+":deadlines", tagged(f.prefix)+":absent").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d keys of the prefix left in Redis after every instance closed", n)
	}
	// What else the prefix holds (who was online, kept for a leave grace
	// and the people log's purge) expires by itself: nothing stays for ever.
	keys, err := client.Keys(ctx, tagged(f.prefix)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no people keys to check: the test stored nobody")
	}
	for _, k := range keys {
		if ttl := client.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 2*opts.InstanceTTL+purgeAfter {
			t.Errorf("key %s left with time to live %v, want one within %v", k, ttl, 2*opts.InstanceTTL+purgeAfter)
		}
	}
}

// When the network to Redis fails, Store and Ping fail (the hub keeps its
// last count, /readyz says 503), the other instances drop this one after
// InstanceTTL, and once the network is back the refresher restores this
// instance's latest count without the hub doing anything.
func TestRedisLostAndBack(t *testing.T) {
	f := newFixture(t)
	opts := Options{InstanceTTL: testTTL, Refresh: testRefresh}
	p, viaProxy := newProxy(t, f)
	a := f.counter(t, opts, viaProxy)
	b := f.counter(t, opts)
	mustStore(t, a, 3, 3)
	mustStore(t, b, 2, 5)

	drain(b)
	p.SetCut(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if err := a.Ping(ctx); err == nil {
		t.Error("Ping succeeded with the network to Redis cut")
	}
	cancel()
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	if _, err := a.Store(ctx, 4); err == nil {
		t.Error("Store succeeded with the network to Redis cut")
	}
	cancel()
	awaitGlobal(t, b, 2, 2, testTTL+testRefresh+5*slack)

	drain(a)
	p.SetCut(false)
	// The failed Store(4) is what a's refresher writes back.
	awaitGlobal(t, b, 2, 6, 5*slack)
	awaitGlobal(t, a, 4, 6, 5*slack)
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.Ping(ctx); err != nil {
		t.Errorf("Ping after the network came back: %v", err)
	}
}

// After the connection to Redis breaks (a Redis restart looks the same),
// the change subscription comes back by itself: changes on another
// instance reach this one within two seconds again, far sooner than the
// 20 s Refresh that would otherwise find them. (The liveness check, which
// finds this instance's own subscription missing and makes a new one, is
// what brings it back so soon after a silent cut; it also signals a
// changed sum, so the subscription itself is checked too.)
func TestSubscriptionRecovers(t *testing.T) {
	f := newFixture(t)
	opts := Options{InstanceTTL: time.Minute}
	p, viaProxy := newProxy(t, f)
	a := f.counter(t, opts, viaProxy)
	b := f.counter(t, opts)
	mustStore(t, a, 1, 1)
	mustStore(t, b, 1, 2)

	p.SetCut(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with the network to Redis cut")
	}
	p.SetCut(false)
	if poll.Until(2*time.Second, a.subscribed) != nil {
		t.Fatal("the change subscription was not back within 2s of the cut's end")
	}

	// The first change may ride on the signal sent when the subscription
	// is back; the later ones need the subscription itself.
	for n := 2; n <= 4; n++ {
		mustStore(t, b, n, 1+n)
		awaitGlobal(t, a, 1, 1+n, 2*time.Second)
	}
}

// Ping fails for a Counter whose Redis port is closed for good.
func TestPingFailsOnClosedPort(t *testing.T) {
	f := newFixture(t)
	p, viaProxy := newProxy(t, f)
	c := f.counter(t, Options{}, viaProxy)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	p.Close()
	if err := c.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with Redis' port closed")
	}
	if ctx.Err() != nil {
		t.Fatal("Ping took the whole 5 s to fail")
	}
}

// New refuses what cannot work, with an error that says why and never
// repeats a password from the URL. None of these needs a Redis.
func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		url  string
		opts Options
		want string // in the error
	}{
		{name: "empty URL", url: "", want: "scheme"},
		{name: "http URL", url: "http://127.0.0.1:6379", want: "scheme"},
		{name: "bad database", url: "redis://127.0.0.1:6379/zero", want: "database"},
		{name: "unparsable URL with password", url: "redis://user:hunter2@[::1:6379", want: "bad URL"},
		{name: "closed port", url: "redis://" + closedPort(t), want: "cannot reach"},
		{name: "refresh not shorter than TTL", url: "redis://127.0.0.1:6379", opts: Options{InstanceTTL: time.Second, Refresh: time.Second}, want: "Refresh"},
		{name: "negative TTL", url: "redis://127.0.0.1:6379", opts: Options{InstanceTTL: -time.Second}, want: "InstanceTTL"},
		{name: "negative refresh", url: "redis://127.0.0.1:6379", opts: Options{Refresh: -time.Second}, want: "Refresh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := New(ctx, tt.url, tt.opts)
			if err == nil {
				_ = c.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

// Store refuses a negative local count instead of lowering everyone's.
func TestStoreRefusesNegative(t *testing.T) {
	f := newFixture(t)
	c := f.counter(t, Options{})
	if _, err := c.Store(context.Background(), -1); err == nil {
		t.Fatal("Store(-1) succeeded")
	}
	mustStore(t, c, 1, 1)
}
