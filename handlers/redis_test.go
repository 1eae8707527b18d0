package handlers_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/headcount/headcount/internal/ci"
	"net"
	"net/http"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/headcount/headcount/stream/redis"
)

// testRedisURL is a database of the local Redis that only these tests use.
const testRedisURL = "redis://127.0.0.1:6379/13"

// sharedCount returns a Redis key prefix of the test's own, so tests (and
// worktrees) running at once never share a count, and a function that
// opens a Counter on it. It skips without a local Redis, except under CI
// where Redis must be there, and removes the test's keys afterwards.
func sharedCount(t *testing.T) func() *redis.Counter {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second)
	if err != nil {
		ci.Missing(t, fmt.Sprintf("Redis at 127.0.0.1:6379 (%v)", err), "redis-server --daemonize yes --port 6379 --save ''")
	}
	conn.Close()
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "headcount-test-" + hex.EncodeToString(b)
	opts, err := goredis.ParseURL(testRedisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rdb := goredis.NewClient(opts)
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, _ := rdb.Keys(ctx, "{"+prefix+"}:*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return func() *redis.Counter {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := redis.New(ctx, testRedisURL, redis.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

func TestTwoInstancesShareOneCount(t *testing.T) {
	newCounter := sharedCount(t)
	a := startCounting(t, nil, newCounter())
	b := startCounting(t, nil, newCounter())

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
