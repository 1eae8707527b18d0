package stream

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http/httputil"
	"strings"
	"testing"
)

// TestLargePieceGoesStraightThrough writes, as r3labs does, events with a
// piece larger than passThrough and small ones, on a hijacked connection:
// the wire carries them exactly, in valid chunks, and the subscriber's
// buffer has not grown to the large piece's size.
func TestLargePieceGoesStraightThrough(t *testing.T) {
	s, wireOf := pipeSubscriber(t)
	h := s.hub
	big := "data: " + strings.Repeat("u", 3*passThrough) + "\n"
	var want strings.Builder
	for _, ev := range [][]string{
		{"id: 2\n", big, "event: user\n", "\n"},
		{"id: 4\n", "data: 7\n", "event: user count\n", "\n"},
		// Nothing gathered after the large piece: Flush writes no empty
		// chunk, which would end the response.
		{"id: 6\n", big},
		{"id: 8\n", "data: 8\n", "\n"},
	} {
		writeEvent(t, s, ev...)
		want.WriteString(strings.Join(ev, ""))
	}
	if s.failed {
		t.Fatal("a write failed")
	}
	if c := cap(s.event); c >= passThrough {
		t.Errorf("the subscriber's buffer holds %d bytes after the large piece, want less than %d", c, passThrough)
	}
	wire := wireOf()
	body, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(append(wire, "0\r\n\r\n"...))))
	if err != nil {
		t.Fatalf("the wire is not valid chunks: %v\n%q", err, wire)
	}
	if string(body) != want.String() {
		t.Errorf("the wire carried\n%q\nwant\n%q", body, want.String())
	}
	if n := h.stats.eventsSent.Load(); n != 4 {
		t.Errorf("%d events counted as sent, want 4", n)
	}
}

// TestNothingGoesToAGoneClient writes, as r3labs does, an event, then
// marks the client gone (its hangup seen) and writes another event and a
// heartbeat, as r3labs does until its relay loop takes the subscriber
// out: only the first reaches the wire or counts as sent.
func TestNothingGoesToAGoneClient(t *testing.T) {
	s, wireOf := pipeSubscriber(t)
	writeEvent(t, s, "id: 2\n", "data: 7\n", "event: user count\n", "\n")
	s.gone.Store(true)
	writeEvent(t, s, "id: 4\n", "data: 8\n", "event: user count\n", "\n")
	writeEvent(t, s, ": heartbeat\n", "\n")
	wire := string(wireOf())
	if !strings.Contains(wire, "data: 7") || strings.Contains(wire, "data: 8") || strings.Contains(wire, "heartbeat") {
		t.Errorf("the wire carried %q; want the first event alone", wire)
	}
	if n := s.hub.stats.eventsSent.Load(); n != 1 {
		t.Errorf("%d events counted as sent, want 1", n)
	}
}

// pipeSubscriber is a subscriber of a hub of its own that has had its
// first events, on a hijacked connection that is one end of a pipe:
// r3labs' writes can be made on it by hand. wire closes the connection
// and returns every byte written to it.
func pipeSubscriber(t *testing.T) (s *subscriber, wire func() []byte) {
	t.Helper()
	h := NewHub(Config{})
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	client, server := net.Pipe()
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	s = &subscriber{hub: h, conn: server, started: true}
	s.from.Store(0)
	return s, func() []byte {
		server.Close()
		return <-got
	}
}

// writeEvent writes an event's pieces and flushes it, as r3labs does.
func writeEvent(t *testing.T, s *subscriber, pieces ...string) {
	t.Helper()
	for _, p := range pieces {
		if _, err := s.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush()
}
