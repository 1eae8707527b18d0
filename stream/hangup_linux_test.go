//go:build linux

package stream

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// watched is how many connections h's hangups watch.
func watched(h *Hub) int {
	h.hangups.mu.Lock()
	defer h.hangups.mu.Unlock()
	return len(h.hangups.subs)
}

// TestHangupsNoticeEveryWayOfLeaving runs hijacked streams watched by the
// hub's hangups, not by a reader each: a client that sends bytes after
// its request keeps its stream (they are dropped, as a reader drops
// them), and one that half-closes, closes or resets is counted out and
// written nothing more.
func TestHangupsNoticeEveryWayOfLeaving(t *testing.T) {
	s := newTestServer(t, Config{})
	if s.hub.hangups == nil {
		t.Fatal("no epoll watch on Linux")
	}
	w := mustDial(t, s.addr(), "watcher", dialOptions{})
	talker := mustDial(t, s.addr(), "talker", dialOptions{})
	half := mustDial(t, s.addr(), "half", dialOptions{})
	closer := mustDial(t, s.addr(), "closer", dialOptions{})
	resetter := mustDial(t, s.addr(), "resetter", dialOptions{})
	w.waitLatest(t, 5, waitLong)
	if n := watched(s.hub); n != 5 {
		t.Fatalf("%d connections watched, want all 5", n)
	}

	// More than one event's reads (drainReads of 512 bytes), in pieces.
	junk := bytes.Repeat([]byte("GET / HTTP/1.1\r\n\r\n"), 1000)
	for i := 0; i < len(junk); i += 4096 {
		if _, err := talker.conn.Write(junk[i:min(i+4096, len(junk))]); err != nil {
			t.Fatal(err)
		}
	}
	late := mustDial(t, s.addr(), "late", dialOptions{})
	talker.waitLatest(t, 6, waitLong)
	w.waitLatest(t, 6, waitLong)
	late.waitLatest(t, 6, waitLong)

	// Each client leaves only once it has been told the latest count:
	// with an event still on its way to it, the write that finds it gone
	// can end the stream before the hangups notice, and that stream's
	// leave is then no hangup (it failed).
	half.waitLatest(t, 6, waitLong)
	if err := half.conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	w.waitLatest(t, 5, waitLong)
	// A client that has closed its side is written nothing more, not even
	// the end of the response: its connection is reset.
	select {
	case <-half.done:
	case <-time.After(waitLong):
		t.Fatal("the half-closed connection is still open")
	}
	half.mu.Lock()
	err := half.readErr
	half.mu.Unlock()
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the half-closed client's read ended with %v, want a reset", err)
	}
	if n := half.latest(); n != 6 {
		t.Errorf("the half-closed client was told %d last, want 6", n)
	}
	closer.waitLatest(t, 5, waitLong)
	closer.close()
	w.waitLatest(t, 4, waitLong)
	resetter.waitLatest(t, 4, waitLong)
	resetter.reset()
	w.waitLatest(t, 3, waitLong)
	talker.waitLatest(t, 3, waitLong)
	if n := watched(s.hub); n != 3 {
		t.Errorf("%d connections watched, want the 3 still open", n)
	}
	// Each hangup was counted on its way out, and back once counted out.
	if got := s.hub.hungUp.Load(); got != 3 {
		t.Errorf("%d hangups counted, want the 3 clients that left", got)
	}
	if n := s.hub.departing.Load(); n != 0 {
		t.Errorf("%d streams still on their way out, want none", n)
	}
}

// TestTLSStreamsKeepTheirReader serves a stream over HTTP/1.1 on TLS,
// which is hijacked too: TLS must read its own records, so the hangups
// leave it alone and a reader of its own notices the client leaving.
func TestTLSStreamsKeepTheirReader(t *testing.T) {
	s := newTestServer(t, Config{}, func(ts *httptest.Server) { ts.TLS = &tls.Config{} })
	conn, err := tls.Dial("tcp", s.addr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\n%s: tls\r\n\r\n", userHeader)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events over TLS: %v %v", resp, err)
	}
	if !eventually(waitLong, func() bool { return registered(s.hub) == 1 }) {
		t.Fatal("the TLS stream was never counted in")
	}
	if n := watched(s.hub); n != 0 {
		t.Errorf("the hangups watch %d TLS connections, want none", n)
	}
	// Its first events read, nothing is on its way to it when it leaves
	// (a write finding it gone would end the stream as a failure).
	for _, want := range []string{"event: user count", "event: people count"} {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the TLS stream's first events: %v", err)
			}
			if strings.Contains(line, want) {
				break
			}
		}
	}
	conn.Close()
	if !eventually(waitLong, func() bool { return registered(s.hub) == 0 }) {
		t.Error("the TLS stream's client left and it is still counted")
	}
	if got, n := s.hub.hungUp.Load(), s.hub.departing.Load(); got != 1 || n != 0 {
		t.Errorf("%d hangups counted and %d streams on their way out, want 1 and none: the reader counts its client's hangup as the hangups do", got, n)
	}
}

// TestHangupsWatchReusedDescriptors opens and closes streams one after
// another, so that each new connection takes the descriptor number of the
// one before it: every new one is watched by the hangups, not a reader of
// its own, and counted out when its client leaves; and a closed
// connection has left the epoll set without an EPOLL_CTL_DEL (forget
// leaves that to the close), which holds the wake-up eventfd alone again.
func TestHangupsWatchReusedDescriptors(t *testing.T) {
	s := newTestServer(t, Config{})
	for i := range 20 {
		c := mustDial(t, s.addr(), fmt.Sprintf("u%d", i), dialOptions{})
		c.waitLatest(t, 1, waitLong)
		if n := watched(s.hub); n != 1 {
			t.Fatalf("stream %d: %d connections watched, want 1", i, n)
		}
		if n := epollEntries(t, s.hub.hangups); n != 2 {
			t.Fatalf("stream %d: the epoll set holds %d descriptors, want the eventfd and the stream's", i, n)
		}
		c.close()
		if !eventually(waitLong, func() bool { return registered(s.hub) == 0 && watched(s.hub) == 0 }) {
			t.Fatalf("stream %d: still counted after its client left", i)
		}
		if !eventually(waitLong, func() bool { return epollEntries(t, s.hub.hangups) == 1 }) {
			t.Fatalf("stream %d: the epoll set holds %d descriptors after its close, want the eventfd alone", i, epollEntries(t, s.hub.hangups))
		}
	}
}

// epollEntries is how many descriptors w's epoll set holds, as the kernel
// lists them in /proc/self/fdinfo.
func epollEntries(t *testing.T, w *hangups) int {
	t.Helper()
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", w.epfd))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(string(info), "\n") {
		if strings.HasPrefix(line, "tfd:") {
			n++
		}
	}
	return n
}
