package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/redistest"
)

// TestRunServesEveryRedisForm starts the whole program on each
// HEADCOUNT_REDIS_URL form the README documents, against real servers the
// test starts: two instances share one count through a Sentinel-managed
// master and through a three-master Cluster, and both answer /readyz 200.
// It fails if any layer between the environment and stream/redis refuses
// a form (as config once refused every form but redis:// and rediss://).
func TestRunServesEveryRedisForm(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sentinel", func(t *testing.T) string { return redistest.StartSentinel(t).URL() }},
		{"cluster", func(t *testing.T) string { return redistest.StartCluster(t, 3).URL() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{
				"HEADCOUNT_REDIS_URL":      tc.url(t),
				"HEADCOUNT_SESSION_SECRET": strings.Repeat("s", 32),
			}
			a, b := start(t, vars), start(t, vars)
			ca, cb := newClient(t, a.addr), newClient(t, b.addr)
			for _, in := range []*instance{a, b} {
				if status, _ := readyz(t, newClient(t, in.addr), in.url); status != http.StatusOK {
					t.Fatalf("/readyz on %s = %d, want 200; log:\n%s", tc.name, status, in.log)
				}
			}
			onA := openStream(t, ca, a.url, signIn(t, ca, a.url, "ada").token)
			onB := openStream(t, cb, b.url, signIn(t, cb, b.url, "grace").token)
			awaitCount(t, onA, 2, 5*time.Second, "the stream on A, with one on A and one on B")
			awaitCount(t, onB, 2, 5*time.Second, "the stream on B, with one on A and one on B")
		})
	}
}
