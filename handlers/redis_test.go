package handlers_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/handlers"
)

// testRedisURL is a database of the local Redis that only these tests use.
const testRedisURL = "redis://127.0.0.1:6379/13"

// needRedis skips without a local Redis, except under CI where Redis must
// be there; it removes the test's keys afterwards.
func needRedis(t *testing.T) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis is not reachable at 127.0.0.1:6379 (CI needs it): %v", err)
		}
		t.Skipf("no Redis at 127.0.0.1:6379 (%v); start one with: redis-server --daemonize yes --port 6379 --save ''", err)
	}
	conn.Close()
	opts, err := goredis.ParseURL(testRedisURL)
	if err != nil {
		t.Fatal(err)
	}
	cleanup := func() {
		rdb := goredis.NewClient(opts)
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, _ := rdb.Keys(ctx, "headcount:*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	}
	cleanup()
	t.Cleanup(cleanup)
}

func TestTwoInstancesShareOneCount(t *testing.T) {
	needRedis(t)
	vars := map[string]string{"HEADCOUNT_REDIS_URL": testRedisURL}
	a := start(t, vars)
	b := start(t, vars)

	// A session made on one instance is valid on the other (same secret).
	ca := browser(t)
	a.signIn(ca, alice)
	cookies := ca.Jar.Cookies(mustURL(t, a.url))
	cb := browser(t)
	cb.Jar.SetCookies(mustURL(t, b.url), cookies)
	if resp, _ := get(t, cb, b.url+"/api/count"); resp.StatusCode != http.StatusOK {
		t.Fatalf("instance B refuses A's session: %d", resp.StatusCode)
	}
	for _, e := range []*env{a, b} {
		if resp, body := get(t, &http.Client{}, e.url+"/readyz"); resp.StatusCode != http.StatusOK {
			t.Fatalf("/readyz with Redis: %d %s", resp.StatusCode, body)
		}
	}

	onA := a.stream(ca)
	mustLast(t, "1", onA)
	onB := b.stream(cb)
	mustLast(t, "2", onA, onB)
	onB2 := b.stream(cb)
	mustLast(t, "3", onA, onB, onB2)
	onA.Close()
	mustLast(t, "2", onB, onB2)

	// Stopping an instance takes its share with it at once.
	onA2 := a.stream(ca)
	mustLast(t, "3", onA2, onB, onB2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mustLast(t, "2", onB, onB2)
	if got := b.srv.Hub().Count(); got != 2 {
		t.Errorf("B's count %d, want 2", got)
	}
}

func TestUnreachableRedisStopsTheStart(t *testing.T) {
	vars := map[string]string{"HEADCOUNT_ADDR": "127.0.0.1:0", "HEADCOUNT_REDIS_URL": "redis://127.0.0.1:1/0"}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	srv := &handlers.Server{Config: cfg}
	err = srv.Open()
	if err == nil {
		srv.Close(context.Background())
		t.Fatal("started with an unreachable Redis")
	}
	if !strings.Contains(err.Error(), "HEADCOUNT_REDIS_URL") {
		t.Errorf("error %q does not name HEADCOUNT_REDIS_URL", err)
	}
	// The port it had taken is free again.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}
