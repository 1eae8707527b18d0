// Package ssetest is the Server-Sent Events reader of the tests: Parser
// turns the lines of an event stream into events, by one set of rules, for
// every test that reads one (over HTTP, a raw connection or curl's output);
// Stream holds one stream over its own HTTP connection and keeps every
// event and comment it reads, so a test can wait for the stream to reach a
// state.
package ssetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Event is one dispatched event as a client sees it.
type Event struct {
	ID, Event, Data, Retry string
}

// Parser reads an event stream line by line, by the SSE rules a browser
// applies: fields until a blank line, which dispatches the event; several
// data lines join with newlines; a line starting with a colon is a
// comment. Unlike a browser it also dispatches an event that has fields
// but no data, so a test sees such an event (which no server should send)
// rather than missing it. The zero value is ready.
type Parser struct {
	ev     Event
	data   []string
	fields bool // a field line came since the last dispatch
}

// Comment reports whether line is a comment, and its text without the
// colon and one leading space.
func Comment(line string) (string, bool) {
	if !strings.HasPrefix(line, ":") {
		return "", false
	}
	return strings.TrimPrefix(line[1:], " "), true
}

// Line takes one line, without its line end, and returns the event it
// dispatches, if it is the blank line ending one.
func (p *Parser) Line(line string) (Event, bool) {
	if line == "" {
		ev, ok := p.ev, p.fields
		ev.Data = strings.Join(p.data, "\n")
		p.ev, p.data, p.fields = Event{}, nil, false
		return ev, ok
	}
	if _, ok := Comment(line); ok {
		return Event{}, false
	}
	field, value, _ := strings.Cut(line, ":")
	value = strings.TrimPrefix(value, " ")
	p.fields = true
	switch field {
	case "id":
		p.ev.ID = value
	case "event":
		p.ev.Event = value
	case "data":
		p.data = append(p.data, value)
	case "retry":
		p.ev.Retry = value
	}
	return Event{}, false
}

// Stream is an open SSE response being read in the background.
type Stream struct {
	// Response is the HTTP response; its body belongs to the reader.
	Response *http.Response

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	events   []Event
	comments []string
	err      error
}

// Open requests url with header and, on a 200, reads the stream until
// Close. Any other status is returned as an error along with the response
// (its body closed). The stream ends with the test.
func Open(t interface {
	Helper()
	Cleanup(func())
}, client *http.Client, url string, header http.Header) (*Stream, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return &Stream{Response: resp}, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	s := &Stream{Response: resp, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	go s.read()
	t.Cleanup(s.Close)
	return s, nil
}

// read parses the stream until it ends.
func (s *Stream) read() {
	defer close(s.done)
	defer s.Response.Body.Close()
	sc := bufio.NewScanner(s.Response.Body)
	var p Parser
	for sc.Scan() {
		line := sc.Text()
		if c, ok := Comment(line); ok {
			s.update(func() { s.comments = append(s.comments, c) })
			continue
		}
		if ev, ok := p.Line(line); ok {
			s.update(func() { s.events = append(s.events, ev) })
		}
	}
	err := sc.Err()
	if err == nil {
		err = ErrEnded
	}
	s.update(func() { s.err = err })
}

// ErrEnded is why a stream ended when the server finished the response
// cleanly; a connection cut mid-response ends with another error.
var ErrEnded = errors.New("stream ended cleanly")

func (s *Stream) update(f func()) {
	s.mu.Lock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Events returns a copy of the events read so far.
func (s *Stream) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Comments returns the comment lines read so far, without the colon.
func (s *Stream) Comments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.comments...)
}

// Ended reports whether the stream has ended, and why.
func (s *Stream) Ended() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil, s.err
}

// Wait waits up to timeout for cond, called with the events and comments
// read so far, to hold. It returns an error describing the last state if
// it does not.
func (s *Stream) Wait(timeout time.Duration, cond func(events []Event, comments []string, ended bool) bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := cond(s.events, s.comments, s.err != nil)
		changed, events, err := s.changed, len(s.events), s.err
		last := ""
		if ev, ok := lastOf(s.events, CountEvent); ok {
			last = ev.Data
		}
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("condition not met within %v: %d events, last count %q, ended: %v", timeout, events, last, err)
		}
	}
}

// CountEvent is the name of the event carrying the number of streams.
const CountEvent = "user count"

// WaitLast waits until the latest "user count" event's data is want.
func (s *Stream) WaitLast(timeout time.Duration, want string) error {
	return s.WaitLastOf(timeout, CountEvent, want)
}

// WaitLastOf waits until the latest event named name has data want.
func (s *Stream) WaitLastOf(timeout time.Duration, name, want string) error {
	return s.Wait(timeout, func(events []Event, _ []string, _ bool) bool {
		ev, ok := lastOf(events, name)
		return ok && ev.Data == want
	})
}

// lastOf returns the latest event named name in events.
func lastOf(events []Event, name string) (Event, bool) {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Event == name {
			return events[i], true
		}
	}
	return Event{}, false
}

// WaitEnd waits until the server ends the stream.
func (s *Stream) WaitEnd(timeout time.Duration) error {
	return s.Wait(timeout, func(_ []Event, _ []string, ended bool) bool { return ended })
}

// Last returns the latest "user count" event, if any.
func (s *Stream) Last() (Event, bool) { return s.LastOf(CountEvent) }

// LastOf returns the latest event named name, if any.
func (s *Stream) LastOf(name string) (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return lastOf(s.events, name)
}

// Close hangs up and waits for the reader to stop.
func (s *Stream) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}
