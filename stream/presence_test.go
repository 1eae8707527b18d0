package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// announcements returns the user events c has read, decoded, in order.
func (c *sseClient) announcements(t testing.TB) []userPayload {
	t.Helper()
	var out []userPayload
	for _, a := range c.announcementsWithIDs(t) {
		out = append(out, a.userPayload)
	}
	return out
}

// announcement is a user event with its id.
type announcement struct {
	id string
	userPayload
}

// announcementsWithIDs returns the user events c read, in order, with their ids.
func (c *sseClient) announcementsWithIDs(t testing.TB) []announcement {
	t.Helper()
	events, _ := c.snapshot()
	var out []announcement
	for _, ev := range events {
		if ev.Event != userEventName {
			continue
		}
		a := announcement{id: ev.ID}
		if err := json.Unmarshal([]byte(ev.Data), &a.userPayload); err != nil {
			t.Fatalf("user event %q: %v", ev.Data, err)
		}
		out = append(out, a)
	}
	return out
}

// lastAbout returns the last user event c read about login.
func (c *sseClient) lastAbout(t testing.TB, login string) (userPayload, bool) {
	t.Helper()
	var last userPayload
	found := false
	for _, u := range c.announcements(t) {
		if u.Login == login {
			last, found = u, true
		}
	}
	return last, found
}

// waitPeople waits until c's latest counts are users streams and people people.
func (c *sseClient) waitPeople(t testing.TB, users, people int) {
	t.Helper()
	if !c.waitUntil(waitLong, func(c *sseClient) bool {
		return c.latest() == users && c.latestOf(peopleEventName) == people
	}) {
		t.Fatalf("counts %d streams / %d people, want %d / %d", c.latest(), c.latestOf(peopleEventName), users, people)
	}
}

// waitAbout waits until the last user event c read about login says connected.
func (c *sseClient) waitAbout(t testing.TB, login string, connected bool) userPayload {
	t.Helper()
	var u userPayload
	if !c.waitUntil(waitLong, func(c *sseClient) bool {
		var ok bool
		u, ok = c.lastAbout(t, login)
		return ok && u.Connected == connected
	}) {
		t.Fatalf("no user event saying %s connected=%v; got %+v", login, connected, c.announcements(t))
	}
	return u
}

// A second tab of someone online announces nothing and moves only the
// user count; their last tab closing announces them gone.
func TestTwoTabsOfOnePerson(t *testing.T) {
	s := newTestServer(t, Config{})
	bob := mustDial(t, s.addr(), "bob", dialOptions{})
	bob.waitPeople(t, 1, 1)

	alice1 := mustDial(t, s.addr(), "alice", dialOptions{local: "127.0.0.2"})
	bob.waitPeople(t, 2, 2)
	u := bob.waitAbout(t, "alice", true)
	if u.UserCount != 2 || u.PeopleCount != 2 {
		t.Errorf("alice's arrival carries counts %d/%d, want 2/2", u.UserCount, u.PeopleCount)
	}
	alice2 := mustDial(t, s.addr(), "alice", dialOptions{local: "127.0.0.3"})
	bob.waitPeople(t, 3, 2)
	alice2.waitPeople(t, 3, 2)
	alice1.close()
	bob.waitPeople(t, 2, 2)
	if got := len(bob.announcements(t)); got != 1 {
		t.Errorf("bob read %d announcements, want only alice's arrival: %+v", got, bob.announcements(t))
	}
	people, total := s.hub.Online(-1)
	if total != 2 || len(people) != 2 || people[0].Login != "bob" || people[1].Login != "alice" || people[1].Streams != 1 {
		t.Errorf("Online = %+v (%d), want bob then alice with one stream", people, total)
	}

	alice2.close()
	u = bob.waitAbout(t, "alice", false)
	bob.waitPeople(t, 1, 1)
	if u.UserCount != 1 || u.PeopleCount != 1 {
		t.Errorf("alice's departure carries counts %d/%d, want 1/1", u.UserCount, u.PeopleCount)
	}
	if got := s.hub.People(); got != 1 {
		t.Errorf("People() = %d, want 1", got)
	}
	events, _ := bob.snapshot()
	checkOrder(t, "bob", events, nil)
}

// A person who closes their only tab and opens another within the leave
// grace (a reload) is never announced: neither gone nor back.
func TestReloadAnnouncesNothing(t *testing.T) {
	s := newTestServer(t, Config{LeaveGrace: time.Minute})
	bob := mustDial(t, s.addr(), "bob", dialOptions{})
	bob.waitPeople(t, 1, 1)
	alice := mustDial(t, s.addr(), "alice", dialOptions{local: "127.0.0.2"})
	bob.waitPeople(t, 2, 2)
	bob.waitAbout(t, "alice", true)
	alice.close()
	bob.waitPeople(t, 1, 2)
	alice = mustDial(t, s.addr(), "alice", dialOptions{local: "127.0.0.3"})
	bob.waitPeople(t, 2, 2)
	alice.waitPeople(t, 2, 2)
	if got := bob.announcements(t); len(got) != 1 {
		t.Errorf("bob read %+v, want only alice's first arrival", got)
	}
	if people, _ := s.hub.Online(-1); len(people) != 2 || people[1].Login != "alice" || people[1].Streams != 1 {
		t.Errorf("Online = %+v, want alice back in her place with one stream", people)
	}
}

// steppedCounter is a Memory counter whose every Store waits for the test
// to let it through, so a test can change the hub in the middle of a cycle.
type steppedCounter struct {
	entered chan int
	allow   chan struct{}
}

func newSteppedCounter() *steppedCounter {
	return &steppedCounter{entered: make(chan int, 1000), allow: make(chan struct{})}
}

func (c *steppedCounter) Store(ctx context.Context, local int) (int, error) {
	select {
	case c.entered <- local:
	default:
	}
	select {
	case <-c.allow:
		return local, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (c *steppedCounter) Changes() <-chan struct{} { return nil }

// drain forgets the Store calls seen so far.
func (c *steppedCounter) drain() {
	for len(c.entered) > 0 {
		<-c.entered
	}
}

// startStepped serves a hub counting through c with one watcher, and lets
// cycles through until the watcher has its first counts.
func startStepped(t *testing.T, c *steppedCounter) (*testServer, *sseClient) {
	t.Helper()
	s := newTestServer(t, Config{Counter: c})
	watcher := mustDial(t, s.addr(), "watcher", dialOptions{})
	c.runUntil(t, func() bool { return watcher.latestOf(peopleEventName) == 1 })
	return s, watcher
}

// holdCycle drains what earlier cycles left, then opens a stream of who
// from 127.0.0.2 and returns once the cycle it starts is held in Store.
func (c *steppedCounter) holdCycle(t *testing.T, s *testServer, who string) *sseClient {
	t.Helper()
	c.drain()
	stream := mustDial(t, s.addr(), who, dialOptions{local: "127.0.0.2"})
	select {
	case <-c.entered:
	case <-time.After(waitLong):
		t.Fatalf("%s's join started no cycle", who)
	}
	return stream
}

// runUntil lets cycles through until cond holds, for at most waitLong.
func (c *steppedCounter) runUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.After(waitLong)
	for !cond() {
		select {
		case c.allow <- struct{}{}:
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			t.Fatal("the condition did not hold with cycles let through")
		}
	}
}

// A person whose stream opens and closes inside one cycle is never announced.
func TestCameAndWentInsideOneCycle(t *testing.T) {
	counter := newSteppedCounter()
	s, watcher := startStepped(t, counter)
	carol := counter.holdCycle(t, s, "carol")
	// The cycle is held before it reads who is online: bob comes and goes.
	bob := mustDial(t, s.addr(), "bob", dialOptions{local: "127.0.0.3"})
	bob.close()
	if !eventually(waitLong, func() bool { return s.hub.Stats().Closed == 1 }) {
		t.Fatal("bob's stream did not end")
	}
	counter.runUntil(t, func() bool {
		_, ok := watcher.lastAbout(t, "carol")
		return ok && watcher.latest() == 2 && watcher.latestOf(peopleEventName) == 2
	})
	if _, ok := watcher.lastAbout(t, "bob"); ok {
		t.Errorf("bob, who came and went inside one cycle, was announced: %+v", watcher.announcements(t))
	}
	carol.close()
	counter.runUntil(t, func() bool { u, ok := watcher.lastAbout(t, "carol"); return ok && !u.Connected })
}

// Under a churn of 500 streams by 50 people, every stream ends on the true
// user and people counts within a second, and the last user event a
// watcher read about anyone is the truth about them.
func TestPresenceChurn(t *testing.T) {
	const total, people, leavers = 500, 50, 10
	s := newTestServer(t, Config{})
	var watchers []*sseClient
	for i := range 3 {
		w := mustDial(t, s.addr(), "watcher", dialOptions{local: fmt.Sprintf("127.0.0.%d", 1+i)})
		watchers = append(watchers, w)
	}
	watchers[0].waitPeople(t, 3, 1)

	var (
		mu   sync.Mutex
		kept []*sseClient
	)
	// dialMany opens stream i for user<i%people>; users 0-9 keep nothing.
	all := dialMany(t, s, total, people, func(i int, c *sseClient) {
		switch {
		case i%people < leavers, i%4 == 0:
			c.close()
		case i%4 == 1:
			c.reset()
		default:
			mu.Lock()
			kept = append(kept, c)
			mu.Unlock()
		}
	})
	online := map[string]bool{}
	for i := range total {
		if p := i % people; p >= leavers && i%4 >= 2 {
			online["user"+strconv.Itoa(p)] = true
		}
	}
	wantUsers, wantPeople := len(kept)+len(watchers), len(online)+1

	end := s.burstEnded(t, total-len(kept))
	deadline := end.Add(time.Second)
	for i, c := range append(kept, watchers...) {
		ok := func(c *sseClient) bool {
			return c.latest() == wantUsers && c.latestOf(peopleEventName) == wantPeople
		}
		if !c.waitUntil(time.Until(deadline), ok) {
			late := c.waitUntil(waitLong, ok)
			t.Fatalf("stream %d shows %d streams / %d people one second after the churn, want %d / %d (got there %v later: %v; stats %+v)",
				i, c.latest(), c.latestOf(peopleEventName), wantUsers, wantPeople, time.Since(end), late, s.hub.Stats())
		}
	}
	t.Logf("every stream showed %d streams and %d people %v after the churn", wantUsers, wantPeople, time.Since(end))

	// The user events of the last cycle follow its counts on the wire.
	truthful := func(c *sseClient) (wrong string) {
		for p := range people {
			login := "user" + strconv.Itoa(p)
			u, seen := c.lastAbout(t, login)
			switch {
			case online[login] && (!seen || !u.Connected):
				return fmt.Sprintf("%s is online; the last word on them: seen %v, %+v", login, seen, u)
			case !online[login] && seen && u.Connected:
				return fmt.Sprintf("%s is offline; the last word on them says connected", login)
			}
		}
		return ""
	}
	for i, w := range watchers {
		if !w.waitUntil(waitLong, func(c *sseClient) bool { return truthful(c) == "" }) {
			t.Errorf("watcher %d: %s", i, truthful(w))
		}
	}
	seen := map[uint64]string{}
	for i, c := range append(all, watchers...) {
		events, _ := c.snapshot()
		checkOrder(t, fmt.Sprintf("stream %d", i), events, seen)
		// Nobody hears of an older state of anyone than they already had:
		// per person, announcements alternate.
		last := map[string]bool{}
		lastID := map[string]string{}
		for _, u := range c.announcementsWithIDs(t) {
			if was, ok := last[u.Login]; ok && was == u.Connected {
				t.Fatalf("stream %d heard %s connected=%v twice in a row (ids %s and %s; stats %+v)",
					i, u.Login, u.Connected, lastID[u.Login], u.id, s.hub.Stats())
			}
			last[u.Login], lastID[u.Login] = u.Connected, u.id
		}
	}
	if list, n := s.hub.Online(-1); n != wantPeople || len(list) != wantPeople {
		t.Errorf("Online lists %d of %d people, want %d", len(list), n, wantPeople)
	}
}

// HEADCOUNT_PRESENCE=count: the counts flow, no identity does.
func TestCountOnly(t *testing.T) {
	s := newTestServer(t, Config{CountOnly: true, LeaveGrace: -1})
	bob := mustDial(t, s.addr(), "bob", dialOptions{})
	alice := mustDial(t, s.addr(), "alice", dialOptions{local: "127.0.0.2"})
	bob.waitPeople(t, 2, 2)
	alice.close()
	bob.waitPeople(t, 1, 1)
	if got := bob.announcements(t); len(got) != 0 {
		t.Errorf("count-only hub announced %+v", got)
	}
	if list, n := s.hub.Online(100); len(list) != 0 || n != 1 {
		t.Errorf("Online = %+v, %d; want nobody listed, 1 person", list, n)
	}
}

// Many announcements in one cycle (they travel as one r3labs event) all
// arrive, in id order.
func TestManyArrivalsInOneCycle(t *testing.T) {
	const people = 101
	counter := newSteppedCounter()
	s, watcher := startStepped(t, counter)
	// Hold a cycle in Store while everyone arrives: the next one sees them all.
	counter.drain()
	for i := range people {
		mustDial(t, s.addr(), "p"+strconv.Itoa(i), dialOptions{local: fmt.Sprintf("127.0.0.%d", 1+i%4)})
	}
	// The cycle that sees them all; then, while the watcher catches up,
	// the count moves without an arrival (a second stream of p0).
	select {
	case counter.allow <- struct{}{}:
	case <-time.After(waitLong):
		t.Fatal("no cycle took the arrivals")
	}
	mustDial(t, s.addr(), "p0", dialOptions{})
	counter.runUntil(t, func() bool { return len(watcher.announcements(t)) >= people })
	seen := map[string]bool{}
	for _, u := range watcher.announcements(t) {
		if !u.Connected || seen[u.Login] {
			t.Fatalf("announcement %+v: want each arrival once", u)
		}
		seen[u.Login] = true
	}
	counter.runUntil(t, func() bool { return watcher.latest() == people+2 && watcher.latestOf(peopleEventName) == people+1 })
	events, _ := watcher.snapshot()
	checkOrder(t, "watcher", events, nil)

	// Caught up, the watcher gets one cycle's events and nothing again.
	mustDial(t, s.addr(), "late", dialOptions{})
	counter.runUntil(t, func() bool { _, ok := watcher.lastAbout(t, "late"); return ok })
	for range 20 {
		select {
		case counter.allow <- struct{}{}:
		case <-time.After(10 * time.Millisecond):
		}
	}
	after, _ := watcher.snapshot()
	var names []string
	for _, ev := range after[len(events):] {
		names = append(names, ev.Event)
	}
	if len(names) != 3 || names[0] != countEventName || names[1] != peopleEventName || names[2] != userEventName {
		t.Errorf("one arrival after catching up sent the watcher %q, want the two counts and one user event", names)
	}
	checkOrder(t, "watcher", after, nil)
}

// A cycle that announces many people at once is one event larger than
// 64 KiB (forty arrivals with 2 KB avatar URLs, the most the handlers
// keep), and it reaches every stream whole: its HTTP/1.1 chunk once had
// room for four hex digits of size only, and every stream writing it
// panicked (net/http recovered the panics and the streams stayed open,
// silent, showing the count before).
func TestLargeCycleEvent(t *testing.T) {
	const arrivals = 40
	counter := newSteppedCounter()
	s, watcher := startStepped(t, counter)
	// Hold a cycle in Store: the arrivals after it all go into the next.
	carol := counter.holdCycle(t, s, "carol")
	avatar := "https://avatars.example/" + strings.Repeat("a", 2000)
	for i := range arrivals {
		mustDial(t, s.addr(), fmt.Sprintf("p%02d", i), dialOptions{
			local:   fmt.Sprintf("127.0.0.%d", 1+i%4),
			headers: map[string]string{avatarHeader: avatar},
		})
	}
	counter.runUntil(t, func() bool {
		return watcher.latest() == arrivals+2 && carol.latest() == arrivals+2
	})
	for _, c := range []*sseClient{watcher, carol} {
		c.waitPeople(t, arrivals+2, arrivals+2)
		// The counts go out before the cycle's announcements: wait for
		// those to be read too.
		got := func(c *sseClient) int {
			n := 0
			for _, u := range c.announcements(t) {
				if u.AvatarURL == avatar && u.Connected {
					n++
				}
			}
			return n
		}
		if !c.waitUntil(waitLong, func(c *sseClient) bool { return got(c) >= arrivals }) || got(c) != arrivals {
			t.Errorf("a stream read %d arrivals with the long avatar, want %d", got(c), arrivals)
		}
		events, _ := c.snapshot()
		checkOrder(t, "watcher", events, nil)
	}
}
