package stream

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/connlimit"
)

// TestCongested: the kernel tells a client that does not read (its window
// closed, data left unsent) from one that does, whatever the server's
// goroutine is doing: a write that is merely slow to get the CPU back is
// not stuck.
func TestCongested(t *testing.T) {
	client, server := tcpPair(t)
	_ = server.SetWriteBuffer(4096)
	_ = client.SetReadBuffer(4096)
	sock := socketOf(server)
	if sock == nil {
		t.Fatal("no socket under a TCP connection")
	}

	// A client that reads everything.
	event := make([]byte, 100)
	buf := make([]byte, len(event))
	for range 50 {
		if _, err := server.Write(event); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
	}
	if congested(sock) {
		t.Error("a connection whose client read everything is congested")
	}

	// A client that reads nothing: write until a write blocks.
	blocked := false
	for range 10000 {
		_ = server.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := server.Write(event); errors.Is(err, os.ErrDeadlineExceeded) {
			blocked = true
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !blocked {
		t.Fatal("no write blocked on a client that reads nothing")
	}
	if !congested(sock) {
		t.Error("a connection whose writes block on a client that reads nothing is not congested")
	}
	if congested(nil) != true {
		t.Error("without a socket, a long write must count as stuck")
	}
}

// TestSocketOfUnwraps: the socket is found under wrappers that unwrap
// with NetConn (tls.Conn, the connection cap's), and a connection with no
// socket has none.
func TestSocketOfUnwraps(t *testing.T) {
	client, _ := tcpPair(t)
	if socketOf(wrapped{wrapped{client}}) == nil {
		t.Error("no socket found under two wrappers")
	}
	if socketOf(tls.Client(client, &tls.Config{})) == nil {
		t.Error("no socket found under a tls.Conn")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if socketOf(a) != nil {
		t.Error("a pipe has a socket")
	}
}

// TestHijackedStreamsHaveTheirSocket: a stream taken over from net/http
// behind the connection cap the program listens with still finds its
// socket, or no write of it could ever be told stuck from merely slow.
func TestHijackedStreamsHaveTheirSocket(t *testing.T) {
	s := newTestServer(t, Config{}, func(ts *httptest.Server) {
		ts.Listener = connlimit.Listen(ts.Listener, 100)
	})
	c := mustDial(t, s.addr(), "alice", dialOptions{})
	c.waitLatest(t, 1, waitLong)
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	for sub := range s.hub.subs {
		if sub.conn == nil {
			t.Fatal("the stream was not taken over from net/http")
		}
		if socketOf(sub.conn) == nil {
			t.Errorf("no socket under the stream's connection (%T)", sub.conn)
		}
	}
}

// wrapped is a listener's connection wrapper that unwraps with NetConn.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

// tcpPair is a loopback TCP connection's two ends, closed with the test.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}
