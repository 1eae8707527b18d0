package redis

import (
	"context"
	"github.com/headcount/headcount/internal/poll"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("0123456789abcdef0123456789abcdef")

// within is the SPEC's bound for a sign-out to reach every instance's
// streams.
const within = 2 * time.Second

// instance is one headcount instance's view: its local list and the
// shared store in front of it.
type instance struct {
	local  *auth.Revocations
	shared *Revocations
}

// prefix is the tests' key prefix: each test has a Redis of its own.
const prefix = "headcount-test"

// streamKey is the sign-out stream's key under prefix.
const streamKey = "{" + prefix + "}:revocations"

func open(t *testing.T, rawURL string) instance {
	t.Helper()
	local := auth.NewRevocations()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shared, err := New(ctx, rawURL, local, Options{Prefix: prefix, Secret: secret,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = shared.Close(ctx)
	})
	return instance{local, shared}
}

// await fails the test unless cond holds within d.
func await(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	if poll.Until(d, cond) != nil {
		t.Fatalf("%s: not within %v", what, d)
	}
	return time.Since(start)
}

func TestASignOutReachesEveryInstance(t *testing.T) {
	r := redistest.Start(t)
	a, b := open(t, r.URL()), open(t, r.URL())
	sess := auth.NewSession(auth.User{ID: "7", Login: "ada"}, time.Now())
	ctx, stop := b.local.Watch(context.Background(), sess)
	defer stop()

	if err := a.shared.Revoke(context.Background(), auth.RevokeSession(sess)); err != nil {
		t.Fatal(err)
	}
	if !a.local.Revoked(sess) {
		t.Fatal("not revoked at once where it was made")
	}
	took := await(t, "the other instance's stream ends", within, func() bool { return ctx.Err() != nil })
	t.Logf("the other instance learnt the sign-out in %v", took)

	// An instance that starts later learns it from the stream.
	if c := open(t, r.URL()); !c.local.Revoked(sess) {
		t.Fatal("an instance started afterwards does not know the sign-out")
	}
	// Sign out everywhere travels too.
	later := auth.NewSession(auth.User{ID: "7", Login: "ada"}, time.Now())
	_ = b.shared.Revoke(context.Background(), auth.RevokeUser("7", time.Now()))
	await(t, "sign-out-everywhere reaches the first instance", within, func() bool { return a.local.Revoked(later) })
}

func TestASignOutDuringAnOutageHoldsAndTravelsLater(t *testing.T) {
	r := redistest.Start(t)
	relay := redistest.NewProxy(t, r.Addr)
	a := open(t, "redis://"+relay.Addr())
	b := open(t, r.URL())
	sess := auth.NewSession(auth.User{ID: "7", Login: "ada"}, time.Now())

	relay.SetCut(true)
	if err := a.shared.Revoke(context.Background(), auth.RevokeSession(sess)); err != nil {
		t.Fatal(err)
	}
	if !a.local.Revoked(sess) {
		t.Fatal("a sign-out during the outage does not hold where it was made")
	}
	// Queued at once; still queued after the writer's tries have failed
	// (a sleep, as what is checked is that nothing happens meanwhile).
	time.Sleep(3 * retryEvery)
	if n := a.shared.Pending(); n != 1 {
		t.Fatalf("%d sign-outs queued after failed tries through the cut, want 1", n)
	}
	if b.local.Revoked(sess) {
		t.Fatal("the other instance knew through a cut network")
	}
	relay.SetCut(false)
	await(t, "the queued sign-out reaches the other instance", within+2*time.Second, func() bool { return b.local.Revoked(sess) })
	// The writer drops it once its XADD has returned, which may be just
	// after the other instance read it.
	await(t, "the queue to empty", within, func() bool { return a.shared.Pending() == 0 })
}

// TestRedisThatLosesTheStreamIsToldAgain: a Redis restarted without
// persistence comes back empty; the instances that saw it go write back
// what they know, so one that starts afterwards still refuses the session.
func TestRedisThatLosesTheStreamIsToldAgain(t *testing.T) {
	r := redistest.Start(t)
	a := open(t, r.URL())
	sess := auth.NewSession(auth.User{ID: "7", Login: "ada"}, time.Now())
	_ = a.shared.Revoke(context.Background(), auth.RevokeSession(sess))
	await(t, "the sign-out reaches Redis", within, func() bool { return a.shared.Pending() == 0 })

	r.Restart() // with no persistence: empty
	await(t, "the sign-out is written back", checkEvery+3*time.Second, func() bool {
		n, _ := r.Do("XLEN", streamKey)
		return n != "" && n != "0"
	})
	if c := open(t, r.URL()); !c.local.Revoked(sess) {
		t.Fatal("an instance started after the loss does not know the sign-out")
	}
}

// TestEntriesNotSignedWithTheSecretAreIgnored: another tenant of the same
// Redis, or anyone who can write to it without the session secret, cannot
// sign anyone out.
func TestEntriesNotSignedWithTheSecretAreIgnored(t *testing.T) {
	r := redistest.Start(t)
	a := open(t, r.URL())
	sess := auth.NewSession(auth.User{ID: "7", Login: "ada"}, time.Now())
	body := `{"s":"` + sess.ID + `","e":` + strings.Repeat("9", 13) + `}`
	for _, mac := range []string{"", "forged", entryMAC([]byte("another secret's key"), []byte(body))} {
		r.MustDo("XADD", streamKey, "*", "r", body, "m", mac)
	}
	// A genuine entry after them proves the reader got past them.
	marker := auth.NewSession(auth.User{ID: "8", Login: "bob"}, time.Now())
	b := open(t, r.URL())
	_ = b.shared.Revoke(context.Background(), auth.RevokeSession(marker))
	await(t, "the genuine entry", within, func() bool { return a.local.Revoked(marker) })
	if a.local.Revoked(sess) || b.local.Revoked(sess) {
		t.Fatal("an entry without our signature signed someone out")
	}
}

// FuzzEntry feeds arbitrary stream entries to the parser: it must never
// panic, and it accepts only a valid revocation signed with the key.
func FuzzEntry(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	good := `{"s":"AAAAAAAAAAAAAAAAAAAAAA","e":1790000000000}`
	f.Add(good, entryMAC(key, []byte(good)))
	f.Add(`{"u":"7","b":1,"e":1790000000000}`, entryMAC(key, []byte(`{"u":"7","b":1,"e":1790000000000}`)))
	f.Add(`{"s":"x","e":1}`, "")
	f.Fuzz(func(t *testing.T, body, mac string) {
		rv, ok := parseEntry(key, body, mac)
		if !ok {
			return
		}
		if !rv.Valid() || entryMAC(key, []byte(body)) != mac {
			t.Fatalf("accepted %q with mac %q: %+v", body, mac, rv)
		}
	})
}
