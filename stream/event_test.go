package stream

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/r3labs/sse/v2"

	"github.com/headcount/headcount/internal/ssetest"
)

// TestEventsNeverEmpty guards trap 2: r3labs ends a stream on an event
// with neither Data nor Comment, so no event the hub builds may be one.
func TestEventsNeverEmpty(t *testing.T) {
	events := map[string]*sse.Event{
		"heartbeat":           heartbeatEvent(),
		"count 0":             newEvent(countFields(1, 0, 0)),
		"count -1":            newEvent(countFields(2, -1, time.Second)),
		"count large":         newEvent(countFields(1<<62, 1<<40, 0)),
		"empty by mistake":    newEvent(eventFields{}),
		"only a name":         newEvent(eventFields{id: 7, name: countEventName, retry: "2000"}),
		"comment, no data":    newEvent(eventFields{comment: "x"}),
		"data, no comment":    newEvent(eventFields{id: 1, name: countEventName, data: "3"}),
		"first count retried": newEvent(countFields(3, 5, 2*time.Second)),
	}
	for name, ev := range events {
		if len(ev.Data) == 0 && len(ev.Comment) == 0 {
			t.Errorf("%s: event has neither data nor comment", name)
		}
	}
	if ev := newEvent(countFields(3, 5, 2*time.Second)); string(ev.Retry) != "2000" || string(ev.Data) != "5" || string(ev.ID) != "3" || string(ev.Event) != "user count" {
		t.Errorf("count event %+v", ev)
	}
	if ev := newEvent(countFields(3, 5, 0)); len(ev.Retry) != 0 {
		t.Errorf("count event without a hint carries retry %q", ev.Retry)
	}
}

// TestEmptyEventDisconnects shows why: a bare r3labs server drops a
// subscriber on an empty event, right after a normal one.
func TestEmptyEventDisconnects(t *testing.T) {
	srv := sse.New()
	srv.AutoReplay = false
	unsubscribed := make(chan struct{}, 1)
	// Callbacks are fine in this demonstration; the hub never uses them.
	srv.OnUnsubscribe = func(string, *sse.Subscriber) { unsubscribed <- struct{}{} }
	srv.CreateStream("demo")
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()

	resp, err := http.Get(ts.URL + "?stream=demo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The subscriber is registered once the response head has arrived.
	srv.Publish("demo", &sse.Event{Data: []byte("1")})
	srv.Publish("demo", &sse.Event{})

	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && len(lines) < 100 {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("stream failed instead of ending: %v", err)
	}
	if got := strings.Join(lines, "|"); got != "id: |data: 1|" {
		t.Errorf("stream before the end: %q", got)
	}
	// The stream ended (EOF above). Wait for r3labs to deregister before
	// closing it, or its watcher goroutine would leak (trap 3).
	select {
	case <-unsubscribed:
	case <-time.After(waitLong):
		t.Fatal("r3labs never deregistered the subscriber")
	}
}

// TestCycleEvent writes one cycle's events as one r3labs event, through
// r3labs itself, and reads them back as an EventSource would: every part
// in order, each with its own id, name, data and retry.
func TestCycleEvent(t *testing.T) {
	parts := []eventFields{
		userFields(7, transition{PersonStreams: PersonStreams{Person: Person{ID: "1", Login: "ada"}}, Connected: true}, 3, 2),
		countFields(8, 3, 2*time.Second),
		peopleFields(9, 2),
	}
	s := sse.New()
	s.AutoReplay, s.AutoStream = false, false
	s.CreateStream(sharedStream)
	defer s.Close()
	w := newMemWriter()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/?stream="+sharedStream, nil))
	}()
	// Registered once r3labs has flushed the head; publish until it took.
	if !eventually(waitLong, func() bool {
		select {
		case <-w.flushed:
			return true
		default:
			return false
		}
	}) {
		t.Fatal("r3labs never flushed the response head")
	}
	s.Publish(sharedStream, cycleEvent(parts))
	if !w.waitFor(waitLong, "data: 2\n") {
		t.Fatalf("r3labs wrote %q", w.String())
	}
	cancel()
	<-done

	var p ssetest.Parser
	var got []ssetest.Event
	for line := range strings.SplitSeq(w.String(), "\n") {
		if ev, ok := p.Line(line); ok {
			got = append(got, ev)
		}
	}
	want := []ssetest.Event{
		{ID: "7", Event: userEventName, Data: parts[0].data},
		{ID: "8", Event: countEventName, Data: "3", Retry: "2000"},
		{ID: "9", Event: peopleEventName, Data: "2"},
	}
	if len(got) != len(want) {
		t.Fatalf("read %d events %+v from %q, want %d", len(got), got, w.String(), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
