package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	"github.com/headcount/headcount/internal/ci"
	"log/slog"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/headcount/headcount/internal/redistest"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// counter's refresher and subscriber, go-redis' connections, the test
// proxy's relays, or the hubs and SSE readers of the end-to-end tests.
func TestMain(m *testing.M) {
	// go-redis' own lines (dials to ports a test closed on purpose) are
	// noise here; TestSentinelFailover checks where they go.
	SetLibraryLogger(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// Short lifetimes, so death is found within a test's patience.
const (
	testTTL     = 300 * time.Millisecond
	testRefresh = 100 * time.Millisecond
	// slack is what a loaded machine under -race may add to any deadline.
	slack = time.Second
)

// fixture is a real Redis and a key prefix of one test's own.
type fixture struct {
	url    string
	prefix string
}

// newFixture returns the Redis the tests use (HEADCOUNT_TEST_REDIS_URL,
// else the local default) with a fresh prefix whose keys are deleted at
// cleanup. Without a reachable Redis the test is skipped, or fails when CI
// is "true", where a silent skip would hide the shared count untested.
func newFixture(t *testing.T) fixture {
	t.Helper()
	rawURL := os.Getenv("HEADCOUNT_TEST_REDIS_URL")
	if rawURL == "" {
		rawURL = "redis://127.0.0.1:6379/0"
	}
	client := newTestClient(t, rawURL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		ci.Missing(t, fmt.Sprintf("Redis at %s (%v)", rawURL, err), `redis-server --daemonize yes --port 6379 --save ""`)
	}

	f := fixture{url: rawURL, prefix: "headcount-test:" + rand.Text()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, tagged(f.prefix)+":*", 100).Iterator()
		for iter.Next(ctx) {
			if err := client.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("deleting %s: %v", iter.Val(), err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("listing the test's keys: %v", err)
		}
	})
	return f
}

// newTestClient returns a plain go-redis client for the test to look at
// Redis directly; cleanup closes it.
func newTestClient(t *testing.T, rawURL string) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		t.Fatalf("HEADCOUNT_TEST_REDIS_URL: %v", err)
	}
	// One try: a missing Redis is reported at once, not after retries.
	opts.MaxRetries, opts.DialerRetries = -1, 1
	client := goredis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// counter starts a Counter on the fixture's prefix, at rawURL if given
// (a proxy), logging into the test's output; cleanup closes it.
func (f fixture) counter(t *testing.T, opts Options, rawURL ...string) *Counter {
	t.Helper()
	u := f.url
	if len(rawURL) > 0 {
		u = rawURL[0]
	}
	opts.Prefix = f.prefix
	if opts.Logger == nil {
		opts.Logger = testLogger(t).With("via", u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := New(ctx, u, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// The error is the test's business where it matters (a cut proxy makes
	// the removal fail on purpose).
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testLogger writes a component's log into the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// mustStore stores local on c and fails the test unless the global count is want.
func mustStore(t *testing.T, c *Counter, local, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, err := c.Store(ctx, local)
	if err != nil {
		t.Fatalf("Store(%d): %v", local, err)
	}
	if got != want {
		t.Fatalf("Store(%d) = %d, want %d", local, got, want)
	}
}

// drain empties c's Changes, so the next signal is a new one.
func drain(c *Counter) {
	select {
	case <-c.Changes():
	default:
	}
}

// awaitGlobal does what the hub does: on every Changes signal it stores
// local and looks at the global count, until it is want. It fails the test
// if that takes longer than within, and returns how long it took. The
// count is only read after a signal, so success also proves that Changes
// fired.
func awaitGlobal(t *testing.T, c *Counter, local, want int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	last := -1
	for {
		select {
		case <-c.Changes():
		case <-deadline.C:
			t.Fatalf("no Changes signal led to the global count %d within %v (last seen %d)", want, within, last)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		got, err := c.Store(ctx, local)
		cancel()
		if err == nil {
			last = got
			if got == want {
				return time.Since(start)
			}
		}
	}
}

// newProxy starts a relay to the fixture's Redis and returns it with the
// URL that reaches Redis through it.
func newProxy(t *testing.T, f fixture) (*redistest.Proxy, string) {
	t.Helper()
	u, err := url.Parse(f.url)
	if err != nil {
		t.Fatal(err)
	}
	p := redistest.NewProxy(t, u.Host)
	u.Host = p.Addr()
	return p, u.String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
