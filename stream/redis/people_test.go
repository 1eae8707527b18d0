package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/headcount/headcount/internal/poll"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/stream"
)

// announcement is the data of a user event.
type announcement struct {
	Login       string `json:"login"`
	Name        string `json:"name"`
	Connected   bool   `json:"connected"`
	UserCount   int    `json:"user_count"`
	PeopleCount int    `json:"people_count"`
}

// announcements returns the user events s has read, in order.
func (s *sseStream) announcements(t *testing.T) []announcement {
	t.Helper()
	out, err := parseAnnouncements(s.Events())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// parseAnnouncements decodes the user events among events.
func parseAnnouncements(events []ssetest.Event) ([]announcement, error) {
	var out []announcement
	for _, ev := range events {
		if ev.Event != "user" {
			continue
		}
		var a announcement
		if err := json.Unmarshal([]byte(ev.Data), &a); err != nil {
			return nil, fmt.Errorf("user event %q: %w", ev.Data, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// awaitPeople waits until the latest people count received is want.
func (s *sseStream) awaitPeople(t *testing.T, want int) {
	t.Helper()
	if err := s.WaitLastOf(testTTL+testRefresh+5*slack, "people count", strconv.Itoa(want)); err != nil {
		t.Fatalf("want latest people count %d: %v", want, err)
	}
}

// awaitAbout waits until the last user event about login says connected.
func (s *sseStream) awaitAbout(t *testing.T, login string, connected bool) announcement {
	t.Helper()
	var last announcement
	err := s.Wait(testTTL+testRefresh+5*slack, func(events []ssetest.Event, _ []string, _ bool) bool {
		found := false
		all, _ := parseAnnouncements(events)
		for _, a := range all {
			if a.Login == login {
				last, found = a, true
			}
		}
		return found && last.Connected == connected
	})
	if err != nil {
		t.Fatalf("no user event saying %s connected=%v (got %+v): %v", login, connected, s.announcements(t), err)
	}
	return last
}

// logins returns the logins of people in order, with their streams.
func logins(people []stream.PersonStreams) []string {
	var out []string
	for _, p := range people {
		out = append(out, p.Login+":"+strconv.Itoa(p.Streams))
	}
	return out
}

// awaitOnline waits until hub lists exactly want (login:streams, in order).
func awaitOnline(t *testing.T, hub *stream.Hub, want ...string) {
	t.Helper()
	var got []string
	var total int
	if poll.Until(testTTL+testRefresh+5*slack, func() bool {
		var people []stream.PersonStreams
		people, total = hub.Online(-1)
		got = logins(people)
		return total == len(want) && slices.Equal(got, want)
	}) != nil {
		t.Fatalf("online %v (%d), want %v", got, total, want)
	}
}

// Alice on instance A and on instance B is one person with two streams;
// her profile, made on A, is what bob on B is told.
func TestPeopleAcrossInstances(t *testing.T) {
	f := newFixture(t)
	opts := Options{InstanceTTL: testTTL, Refresh: testRefresh}
	hubA, tsA := newHub(t, f.counter(t, opts))
	hubB, tsB := newHub(t, f.counter(t, opts))

	bob := openStream(t, tsB, "bob")
	bob.awaitCount(t, 1)
	bob.awaitPeople(t, 1)

	aliceA := openStreamAs(t, tsA, "alice", "Alice Liddell")
	a := bob.awaitAbout(t, "alice", true)
	if a.Name != "Alice Liddell" || a.PeopleCount != 2 {
		t.Errorf("bob heard %+v, want Alice Liddell's arrival with 2 people", a)
	}
	bob.awaitPeople(t, 2)
	aliceB := openStreamAs(t, tsB, "alice", "Alice Liddell")
	for _, s := range []*sseStream{bob, aliceA, aliceB} {
		s.awaitCount(t, 3)
		s.awaitPeople(t, 2)
	}
	awaitOnline(t, hubA, "bob:1", "alice:2")
	awaitOnline(t, hubB, "bob:1", "alice:2")
	if people, _ := hubA.Online(-1); people[0].Login != "bob" || people[1].Name != "Alice Liddell" {
		t.Errorf("A lists %+v, want bob and Alice Liddell's profiles", people)
	}

	aliceA.close()
	bob.awaitCount(t, 2)
	awaitOnline(t, hubA, "bob:1", "alice:1")
	aliceB.close()
	a = bob.awaitAbout(t, "alice", false)
	bob.awaitPeople(t, 1)
	if n := len(bob.announcements(t)); n != 2 {
		t.Errorf("bob heard %d announcements, want alice's arrival and departure: %+v", n, bob.announcements(t))
	}
	awaitOnline(t, hubA, "bob:1")
}

// When an instance dies, its people leave everyone's count within
// InstanceTTL + Refresh (and the leave grace), announced as gone.
func TestDeadInstancesPeopleLeave(t *testing.T) {
	f := newFixture(t)
	opts := Options{InstanceTTL: testTTL, Refresh: testRefresh}
	a := f.counter(t, opts)
	_, tsA := newHub(t, a)
	hubB, tsB := newHub(t, f.counter(t, opts))

	bob := openStream(t, tsB, "bob")
	bob.awaitPeople(t, 1)
	carol := openStream(t, tsA, "carol")
	both := openStream(t, tsA, "dave")
	daveB := openStream(t, tsB, "dave")
	bob.awaitPeople(t, 3)
	bob.awaitCount(t, 4)
	bob.awaitAbout(t, "carol", true)

	start := time.Now()
	if err := a.shutdown(false); err != nil {
		t.Fatalf("killing a: %v", err)
	}
	bob.awaitAbout(t, "carol", false)
	if took, limit := time.Since(start), testTTL+testRefresh+stream.DefaultLeaveGrace+slack; took > limit {
		t.Errorf("carol left %v after A died, want at most %v", took, limit)
	}
	bob.awaitPeople(t, 2)
	bob.awaitCount(t, 2)
	awaitOnline(t, hubB, "bob:1", "dave:1")
	for _, an := range bob.announcements(t) {
		if an.Login == "dave" && !an.Connected {
			t.Errorf("dave, still on B, was announced gone: %+v", an)
		}
	}
	_, _, _ = carol, both, daveB
}

// A person who closes their stream on A and opens one on B at once is
// not announced as leaving, and keeps their place in the arrival order.
func TestMoveBetweenInstances(t *testing.T) {
	f := newFixture(t)
	opts := Options{InstanceTTL: testTTL, Refresh: testRefresh}
	// A grace long enough that a loaded machine sees dave leaving in it.
	const grace = time.Second
	_, tsA := newHubWith(t, stream.Config{Counter: f.counter(t, opts), LeaveGrace: grace})
	hubB, tsB := newHubWith(t, stream.Config{Counter: f.counter(t, opts), LeaveGrace: grace})

	bob := openStream(t, tsB, "bob")
	bob.awaitPeople(t, 1)
	dave := openStream(t, tsA, "dave")
	bob.awaitAbout(t, "dave", true)
	carol := openStream(t, tsA, "carol")
	bob.awaitAbout(t, "carol", true)
	awaitOnline(t, hubB, "bob:1", "dave:1", "carol:1")

	dave.close()
	// B has learnt from Redis that dave holds no stream anywhere (he is
	// leaving, within the grace): only now does he open on B.
	awaitOnline(t, hubB, "bob:1", "dave:0", "carol:1")
	dave = openStream(t, tsB, "dave")
	dave.awaitCount(t, 3)
	bob.awaitCount(t, 3)
	// Absence takes time to show: past the leave grace, with a margin,
	// then a later arrival proves every earlier cycle has been read.
	time.Sleep(grace + grace/2)
	openStream(t, tsA, "erin")
	bob.awaitAbout(t, "erin", true)
	for _, an := range bob.announcements(t) {
		if an.Login == "dave" && !an.Connected {
			t.Errorf("dave, who moved from A to B, was announced leaving: %+v", bob.announcements(t))
		}
	}
	awaitOnline(t, hubB, "bob:1", "dave:1", "carol:1", "erin:1")
	_ = carol
}

// storePeople calls c.StorePeople and fails the test on an error.
func storePeople(t *testing.T, c *Counter, changed []stream.PersonStreams, all bool, since uint64) stream.PeopleChanges {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, err := c.StorePeople(ctx, changed, all, since)
	if err != nil {
		t.Fatalf("StorePeople: %v", err)
	}
	return got
}

// The roster's own contract: changes since a version, everyone when the
// version is unknown, and a share taken for dead asks for everything.
func TestRosterVersionsAndResend(t *testing.T) {
	f := newFixture(t)
	// Refreshes far apart, so only the test decides who looks dead.
	opts := Options{InstanceTTL: time.Minute, Refresh: 30 * time.Second}
	a := f.counter(t, opts)
	b := f.counter(t, opts)
	alice := stream.PersonStreams{Person: stream.Person{ID: "1", Login: "alice", Name: "Alice"}, Streams: 2}
	bob := stream.PersonStreams{Person: stream.Person{ID: "2", Login: "bob"}, Streams: 1}

	mustStore(t, a, 2, 2)
	first := storePeople(t, a, []stream.PersonStreams{alice}, true, 0)
	if !first.Full || len(first.People) != 1 || first.People[0].Name != "Alice" || first.People[0].Streams != 2 {
		t.Fatalf("first answer %+v, want everyone: Alice with 2 streams", first)
	}
	mustStore(t, b, 1, 3)
	fromB := storePeople(t, b, []stream.PersonStreams{bob, {Person: stream.Person{ID: "1", Login: "alice", Name: "Alice"}, Streams: 1}}, true, 0)
	if len(fromB.People) != 2 {
		t.Fatalf("B's first answer %+v, want alice and bob", fromB)
	}
	// A learns only what changed after the version it knows.
	next := storePeople(t, a, nil, false, first.Version)
	if next.Full || len(next.People) != 2 {
		t.Fatalf("A's next answer %+v, want alice (3 streams) and bob, not a full list", next)
	}
	for _, p := range next.People {
		if p.ID == "1" && p.Streams != 3 || p.ID == "2" && (p.Streams != 1 || p.Login != "bob") {
			t.Errorf("A learnt %+v", p)
		}
	}
	if byID := map[string]int64{next.People[0].ID: next.People[0].Since, next.People[1].ID: next.People[1].Since}; byID["1"] >= byID["2"] {
		t.Errorf("arrival numbers %v: alice came first", byID)
	}
	if again := storePeople(t, a, nil, false, next.Version); len(again.People) != 0 {
		t.Errorf("nothing changed, yet A learnt %+v", again.People)
	}

	// A looks dead to B: its deadline is gone. B takes A's people out.
	client := newTestClient(t, f.url)
	if err := client.ZRem(t.Context(), tagged(f.prefix)+":deadlines", a.opts.InstanceID).Err(); err != nil {
		t.Fatal(err)
	}
	gone := storePeople(t, b, nil, false, fromB.Version)
	if len(gone.People) != 1 || gone.People[0].ID != "1" || gone.People[0].Streams != 1 {
		t.Fatalf("after A's death B learnt %+v, want alice down to B's one stream", gone.People)
	}
	// A comes back with a change: its share is gone, so it must resend.
	mustStore(t, a, 2, 3)
	if r := storePeople(t, a, []stream.PersonStreams{{Person: alice.Person, Streams: 1}}, false, next.Version); !r.Resend {
		t.Fatalf("A's change after its share was dropped: %+v, want Resend", r)
	}
	back := storePeople(t, a, []stream.PersonStreams{alice}, true, next.Version)
	if !back.Full || len(back.People) != 2 {
		t.Fatalf("A's resend answered %+v, want everyone", back)
	}
	for _, p := range back.People {
		if p.ID == "1" && p.Streams != 3 {
			t.Errorf("alice has %d streams after A resent, want 3", p.Streams)
		}
	}
}
