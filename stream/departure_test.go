package stream

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestMassDepartureIsToldOnce: when most streams leave at once, those who
// stay are told the final count, not the counts on the way down. Each of
// those would go mostly to streams about to leave: at 10,000, 9,000
// leaving made 13,000 writes for the 1,000 who stayed, and the writes
// took the processors from the closes. The first leave waits
// departureWait for another hangup, the pace waits for the hangups on
// their way (Hub.departing), and a cycle while at least burstNewcomers
// are on their way holds the counts back from those streaming (holds).
//
// The closes come one after another from this goroutine, beside the
// server's own. An attempt in which the machine held the first two more
// than departureWait/2 apart, or two later ones departureGap/2 apart (the
// departure had ended, as far as anyone can tell), says nothing and is
// run again, up to three times; so does one whose first leave went out
// alone and nothing else did before the final count (the machine kept
// the second hangup from the hangups for departureWait).
func TestMassDepartureIsToldOnce(t *testing.T) {
	const stay, leave = 50, paceFrom
	for attempt := 1; attempt <= 3; attempt++ {
		counts, first, gap := massDeparture(t, stay, leave)
		if first > departureWait/2 || gap > departureGap/2 {
			t.Logf("attempt %d: the first two closes came %v apart, two others %v; again", attempt, first, gap)
			continue
		}
		if len(counts) == 2 && counts[0] == stay+leave-1 {
			t.Logf("attempt %d: the first leave went out alone; again", attempt)
			continue
		}
		if len(counts) != 1 {
			t.Errorf("a stream that stayed was told %v during the departure, want [%d]: the final count alone", counts, stay)
		}
		return
	}
	t.Skip("the machine held the closes or the hangups apart in every attempt: a mass departure cannot be made here")
}

// massDeparture opens stay+leave streams, closes leave of them one after
// another and waits until those who stay show stay. It returns the user
// counts told from the first close on to the stream that stayed and was
// told the most, the time between the first two closes, and the longest
// between two others.
func massDeparture(t *testing.T, stay, leave int) (counts []int, first, gap time.Duration) {
	t.Helper()
	s := newTestServer(t, Config{})
	clients := dialBulk(t, s, stay+leave, stay+leave)
	allShow(t, s, clients, stay+leave, time.Now().Add(waitLong))
	staying, leaving := clients[:stay], clients[stay:]
	before := make([]int, stay)
	for i, c := range staying {
		events, _ := c.snapshot()
		before[i] = len(events)
	}

	var last time.Time
	for i, c := range leaving {
		c.conn.Close()
		now := time.Now()
		switch i {
		case 0:
		case 1:
			first = now.Sub(last)
		default:
			gap = max(gap, now.Sub(last))
		}
		last = now
	}
	for _, c := range leaving {
		<-c.done
	}
	allShow(t, s, staying, stay, time.Now().Add(waitLong))
	if !eventually(waitLong, func() bool { return s.hub.departing.Load() == 0 }) {
		t.Errorf("%d streams still on their way out after every leave was counted", s.hub.departing.Load())
	}
	for i, c := range staying {
		events, _ := c.snapshot()
		var told []int
		for _, ev := range events[before[i]:] {
			if ev.Event == countEventName {
				n, _ := strconv.Atoi(ev.Data)
				told = append(told, n)
			}
		}
		if len(told) > len(counts) {
			counts = told
		}
	}
	return counts, first, gap
}

// TestHoldsWhileLeavingInBulk: a cycle holds the counts back from those
// streaming while at least burstNewcomers are on their way out, telling
// them at most every burstTell from the first such cycle on (the last
// telling before the departure may be long past); fewer on their way
// end the hold, and a later departure holds again.
func TestHoldsWhileLeavingInBulk(t *testing.T) {
	start := time.Now()
	b := broadcaster{started: true, toldAt: start.Add(-time.Hour)}
	steps := []struct {
		departing int
		after     time.Duration
		tell      bool // the cycle told everyone (not held)
		want      bool
	}{
		{departing: burstNewcomers - 1, want: false},
		{departing: burstNewcomers, after: time.Millisecond, want: true},
		{departing: 5 * burstNewcomers, after: burstTell / 2, want: true},
		{departing: burstNewcomers, after: burstTell + time.Millisecond, tell: true, want: false},
		{departing: burstNewcomers, after: burstTell + 2*time.Millisecond, want: true},
		{departing: 0, after: burstTell + 3*time.Millisecond, want: false},
		{departing: burstNewcomers, after: burstTell + 4*time.Millisecond, want: true},
	}
	for i, s := range steps {
		now := start.Add(s.after)
		_, got := b.holds(0, 0, s.departing, 0, false, now)
		if got != s.want {
			t.Errorf("step %d: %d on their way, %v in: holds %v, want %v", i, s.departing, s.after, got, s.want)
		}
		if s.tell {
			b.toldAt = now
		}
	}
	if _, hold := b.holds(0, 0, burstNewcomers, 1, false, start.Add(burstTell+5*time.Millisecond)); hold {
		t.Error("a cycle that announces someone holds the counts back")
	}
}

// TestALoneHangupWaitsForAnother: before a leave whose client hung up
// goes out as a lone change, the pace waits departureWait for another
// hangup; and while any stream is on its way out (Hub.departing), the
// pace does not end (at most maxPace); nor, until departureGap has passed
// without another, after two hangups since the latest cycle. The pace is called directly, on a
// broadcaster whose last broadcast reached paceFrom streams long ago.
func TestALoneHangupWaitsForAnother(t *testing.T) {
	h := NewHub(Config{})
	defer h.Close(context.Background())
	b := broadcaster{reached: paceFrom, sentAt: time.Now().Add(-time.Hour)}

	h.moves.Add(1) // one leave, whose client hung up
	h.hungUp.Add(1)
	start := time.Now()
	if !h.pace(&b) {
		t.Fatal("pace reports the hub stopped")
	}
	if took := time.Since(start); took < departureWait {
		t.Errorf("a lone hangup went out after %v, want a wait of %v for another", took, departureWait)
	}

	h.departing.Add(1) // another is on its way
	paced := make(chan struct{})
	start = time.Now()
	go func() {
		defer close(paced)
		h.pace(&b)
	}()
	check := time.After(maxPace / 4)
	select {
	case <-paced:
		if took := time.Since(start); took < maxPace {
			t.Errorf("the pace ended after %v with a stream on its way out, want it held until that stream has left (or maxPace)", took)
		}
	case <-check:
	}
	h.departing.Add(-1)
	select {
	case <-paced:
	case <-time.After(waitLong):
		t.Fatal("the pace did not end once no stream was on its way")
	}

	// Two hangups since the cycle, both counted out already: a departure
	// too, told once it has been quiet for departureGap.
	h.moves.Add(1)
	h.hungUp.Add(1)
	start = time.Now()
	h.pace(&b)
	if took := time.Since(start); took < departureGap {
		t.Errorf("two hangups went out after %v, want them held until %v without another", took, departureGap)
	}
}
