//go:build unix

package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/stream"
)

// TestProcessKilledInstancesPeopleAreAnnouncedGone: two headcount
// processes on one Redis, carol only on A, alice on both. After SIGKILL of
// A (nothing says goodbye) the watcher on B hears carol leave within two
// seconds and the leave grace, while nothing says alice, still on B, left.
func TestProcessKilledInstancesPeopleAreAnnouncedGone(t *testing.T) {
	p := startPair(t)
	if err := p.watch.WaitLastOf(requestTimeout, "people count", "1"); err != nil {
		t.Fatal(err)
	}
	alice := signIn(t, p.ca, p.a.url, "alice").token
	openStream(t, p.ca, p.a.url, alice)
	openStream(t, p.cb, p.b.url, alice) // a token made on A is good on B
	openStream(t, p.ca, p.a.url, signIn(t, p.ca, p.a.url, "carol").token)
	awaitCount(t, p.watch, 4, 5*time.Second, "alice on both, carol on A")
	if err := p.watch.WaitLastOf(requestTimeout, "people count", "3"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := p.a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	limit := 2*time.Second + stream.DefaultLeaveGrace
	err := p.watch.Wait(limit, func(events []ssetest.Event, _ []string, _ bool) bool {
		return lastAbout(events, "carol") == "false"
	})
	if err != nil {
		t.Fatalf("the watcher did not hear carol leave within %v of A's SIGKILL: %v", limit, err)
	}
	t.Logf("carol was announced gone %v after A was killed", time.Since(start))
	awaitCount(t, p.watch, 2, time.Second, "after SIGKILL")
	if err := p.watch.WaitLastOf(time.Second, "people count", "2"); err != nil {
		t.Fatal(err)
	}
	if got := lastAbout(p.watch.Events(), "alice"); got != "true" {
		t.Errorf("the last word the watcher heard about alice, still on B, is connected=%s", got)
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
