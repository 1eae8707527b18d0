package stream

import (
	"context"
	"github.com/headcount/headcount/internal/logbuf"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// panicListener hands out connections that panic on their second write
// when the client is at 127.0.0.2: the response head goes out, then the
// first event's write panics, as a bug in serving one stream would.
type panicListener struct{ net.Listener }

func (l panicListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	return &panicConn{Conn: c, armed: host == "127.0.0.2"}, nil
}

type panicConn struct {
	net.Conn
	armed  bool
	writes atomic.Int64
}

func (c *panicConn) Write(p []byte) (int, error) {
	if c.writes.Add(1) == 2 && c.armed {
		panic("injected: serving this stream broke")
	}
	return c.Conn.Write(p)
}

// TestPanicEndsOneStream: a panic while serving one taken-over stream
// ends that stream alone, with or without a Lifetime (on the hub's own
// goroutine, where it would crash the process; under net/http, which would
// recover it on a connection it no longer owns and leave the subscriber
// counted): it is logged at error with its stack, the connection closes,
// the count goes down, Ended runs, and the other streams go on.
func TestPanicEndsOneStream(t *testing.T) {
	for _, detach := range []bool{true, false} {
		name := "net/http"
		if detach {
			name = "lifetime"
		}
		t.Run(name, func(t *testing.T) {
			logs := &logbuf.Buffer{}
			hub := NewHub(Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			var ended atomic.Int64
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if detach {
					r = r.WithContext(WithLifetime(r.Context(), Lifetime{Ended: func() { ended.Add(1) }}))
				}
				if err := hub.Serve(w, r, testPerson(r.Header.Get(userHeader))); err != nil {
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
				}
			}))
			ts.Listener = panicListener{ts.Listener}
			ts.Start()
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := hub.Close(ctx); err != nil {
					t.Errorf("hub.Close: %v", err)
				}
				ts.Close()
			})
			addr := ts.Listener.Addr().String()

			a := mustDial(t, addr, "alice", dialOptions{})
			a.waitLatest(t, 1, waitLong)
			b := mustDial(t, addr, "bob", dialOptions{local: "127.0.0.2"})
			if !b.waitEnded(waitLong) {
				t.Fatal("the stream whose serving panicked was not closed")
			}
			if events, _ := b.snapshot(); len(events) != 0 {
				t.Errorf("the panicked stream got events %+v", events)
			}
			if !eventually(waitLong, func() bool { st := hub.Stats(); return st.Closed == 1 && st.Subscribers == 1 }) {
				t.Fatalf("the panicked stream was not counted out: %+v", hub.Stats())
			}
			// alice was told bob came (2) and went (1).
			if !a.waitUntil(waitLong, func(c *sseClient) bool {
				return c.latest() == 1 && strings.Join(counts(c), " ") == "1 2 1"
			}) {
				events, _ := a.snapshot()
				t.Fatalf("alice's events %+v, want the counts 1, 2, 1", events)
			}
			if detach && !eventually(waitLong, func() bool { return ended.Load() == 1 }) {
				t.Errorf("Ended ran %d times, want 1", ended.Load())
			}
			log := logs.String()
			if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "injected: serving this stream broke") || !strings.Contains(log, "panicConn") || !strings.Contains(log, "remote=127.0.0.2:") {
				t.Errorf("the panic was not logged at error with its stack and the client's address:\n%s", log)
			}

			// The shared stream goes on for everyone else.
			c := mustDial(t, addr, "carol", dialOptions{local: "127.0.0.3"})
			c.waitLatest(t, 2, waitLong)
			a.waitLatest(t, 2, waitLong)
		})
	}
}

// counts are the user counts c has been sent, in order.
func counts(c *sseClient) []string {
	events, _ := c.snapshot()
	var data []string
	for _, e := range events {
		if e.Event == countEventName {
			data = append(data, e.Data)
		}
	}
	return data
}
