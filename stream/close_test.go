package stream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestCloseManyStreams closes a hub holding 1,000 streams: every client
// sees its stream end, every Serve returns, Close is quick, later streams
// are refused, and (through TestMain's goleak) no r3labs goroutine is left
// behind, which a bare sse.Server.Close would leak.
func TestCloseManyStreams(t *testing.T) {
	const total = 1000
	s := newTestServer(t, Config{})

	begin := time.Now()
	clients := dialMany(t, s, total, 100, nil)
	t.Logf("opened %d streams in %v", total, time.Since(begin))
	for i, c := range clients {
		if !c.waitUntil(waitLong, func(c *sseClient) bool { return c.latest() == total }) {
			t.Fatalf("client %d shows %d, want %d", i, c.latest(), total)
		}
	}

	t.Logf("all saw %d after %v", total, time.Since(begin))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.hub.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	took := time.Since(start)
	t.Logf("Close with %d streams took %v", total, took)

	for i, c := range clients {
		if !c.waitEnded(waitLong) {
			t.Fatalf("client %d: stream still open after Close", i)
		}
	}
	if !eventually(time.Second, func() bool { return s.serving.Load() == 0 }) {
		t.Errorf("%d Serve calls still running after Close", s.serving.Load())
	}
	st := s.hub.Stats()
	if st.Subscribers != 0 || st.Closed != total {
		t.Errorf("after Close: %+v", st)
	}
	s.hub.mu.Lock()
	left := len(s.hub.subs)
	s.hub.mu.Unlock()
	if left != 0 {
		t.Errorf("%d subscribers still registered", left)
	}
	if s.hub.sse.StreamExists(sharedStream) {
		t.Errorf("the shared r3labs stream survived Close")
	}

	// Closed means closed: a new stream is refused, and Close again is fine.
	c, err := dialStream(t, s.addr(), "late", dialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("stream after Close: status %d, want 503", c.resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	if err := s.hub.Serve(rec, httptest.NewRequest(http.MethodGet, "/events", nil), testPerson("late")); !errors.Is(err, ErrClosed) || rec.Body.Len() != 0 {
		t.Errorf("Serve after Close = %v, wrote %d bytes", err, rec.Body.Len())
	}
	if got := s.hub.Stats().RefusedClosed; got != 2 {
		t.Errorf("RefusedClosed = %d, want 2", got)
	}
	if err := s.hub.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseTimeout shows Close honours its context while a stream's Serve
// cannot return, and that a later Close finishes the job.
func TestCloseTimeout(t *testing.T) {
	h := NewHub(Config{})
	entered := make(chan struct{})
	release := make(chan struct{})
	w := &blockingWriter{header: http.Header{}, entered: entered, release: release}
	served := make(chan error, 1)
	go func() {
		served <- h.Serve(w, httptest.NewRequest(http.MethodGet, "/events", nil), testPerson("alice"))
	}()
	select {
	case <-entered:
	case <-time.After(waitLong):
		t.Fatal("the stream never wrote")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a stream that cannot end = %v, want DeadlineExceeded", err)
	}
	close(release)
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Serve did not return")
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// blockingWriter is a ResponseWriter whose first write blocks until
// release, like a connection that neither takes bytes nor supports
// deadlines.
type blockingWriter struct {
	header  http.Header
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *blockingWriter) Header() http.Header { return w.header }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Flush()              {}
func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}
