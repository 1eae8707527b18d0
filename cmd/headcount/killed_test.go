//go:build unix

package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/stream"
	"github.com/headcount/headcount/stream/redis"
)

// killedTestRedis is the Redis database of TestProcessKilledInstancesPeopleLeave:
// one of its own, since the binary uses the default key prefix.
const killedTestRedis = "redis://127.0.0.1:6379/11"

// TestProcessKilledInstancesPeopleLeave runs two headcount processes on one
// Redis: a person on each, alice on both. SIGKILL of A (nothing said
// goodbye) makes B's stream hear carol, who was only on A, leave, within
// the instance lifetime and a refresh (and the leave grace), while alice,
// still on B, is not announced gone.
func TestProcessKilledInstancesPeopleLeave(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DB: 11})
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at 127.0.0.1:6379: %v", err)
		}
		t.Skipf("no Redis at 127.0.0.1:6379 (%v); start one with: redis-server --daemonize yes --port 6379 --save \"\"", err)
	}
	clean := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		keys, _ := client.Keys(ctx, redis.DefaultPrefix+":*").Result()
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
	}
	clean()
	t.Cleanup(clean)

	vars := map[string]string{
		"HEADCOUNT_REDIS_URL":      killedTestRedis,
		"HEADCOUNT_SESSION_SECRET": "0123456789abcdef0123456789abcdef-killed",
	}
	a := startProcess(t, vars)
	b := startProcess(t, vars)
	ca, cb := newClient(t, a.addr), newClient(t, b.addr)

	bob := openStream(t, cb, b.url, signIn(t, cb, b.url, "bob").token)
	if err := bob.WaitLastOf(requestTimeout, "people count", "1"); err != nil {
		t.Fatal(err)
	}
	aliceToken := signIn(t, ca, a.url, "alice").token
	openStream(t, ca, a.url, aliceToken)
	openStream(t, cb, b.url, aliceToken) // a token made on A is good on B
	openStream(t, ca, a.url, signIn(t, ca, a.url, "carol").token)
	if err := bob.WaitLast(requestTimeout, "4"); err != nil {
		t.Fatal(err)
	}
	if err := bob.WaitLastOf(requestTimeout, "people count", "3"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	limit := redis.DefaultInstanceTTL + redis.DefaultInstanceTTL/3 + stream.DefaultLeaveGrace + 2*time.Second
	err := bob.Wait(limit, func(events []ssetest.Event, _ []string, _ bool) bool {
		return lastAbout(events, "carol") == "false"
	})
	if err != nil {
		t.Fatalf("bob did not hear carol leave within %v of A's SIGKILL: %v", limit, err)
	}
	t.Logf("carol left %v after A was killed", time.Since(start))
	if err := bob.WaitLastOf(requestTimeout, "people count", "2"); err != nil {
		t.Fatal(err)
	}
	if err := bob.WaitLast(requestTimeout, "2"); err != nil {
		t.Fatal(err)
	}
	if got := lastAbout(bob.Events(), "alice"); got != "true" {
		t.Errorf("the last word bob heard about alice, still on B, is connected=%s", got)
	}
}

// lastAbout returns "true" or "false", what the last user event about
// login among events said, or "" if none.
func lastAbout(events []ssetest.Event, login string) string {
	last := ""
	for _, ev := range events {
		var u struct {
			Login     string `json:"login"`
			Connected bool   `json:"connected"`
		}
		if ev.Event != "user" || json.Unmarshal([]byte(ev.Data), &u) != nil || u.Login != login {
			continue
		}
		last = "false"
		if u.Connected {
			last = "true"
		}
	}
	return last
}
