package stream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// flushOnly wraps a ResponseWriter the way Echo's Response does: Flush
// without FlushError, so the flush's error is dropped, and Unwrap.
type flushOnly struct{ http.ResponseWriter }

func (f flushOnly) Flush()                      { _ = http.NewResponseController(f.ResponseWriter).Flush() }
func (f flushOnly) Unwrap() http.ResponseWriter { return f.ResponseWriter }
func (f flushOnly) Write(p []byte) (int, error) { return f.ResponseWriter.Write(p) }
func (f flushOnly) WriteHeader(code int)        { f.ResponseWriter.WriteHeader(code) }
func (f flushOnly) Header() http.Header         { return f.ResponseWriter.Header() }

// TestFailedHeartbeatsAreCountedBehindMiddleware serves the hub through a
// writer that swallows flush errors, as Echo's does, to a client that never
// reads. Its heartbeats must be counted as failed when its writes time out,
// and not as sent.
func TestFailedHeartbeatsAreCountedBehindMiddleware(t *testing.T) {
	hub := NewHub(Config{Heartbeat: 2 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := hub.Serve(flushOnly{w}, r, testPerson("stuck")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	smallSendBuffers(ts)
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hub.Close(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("close: %v", err)
		}
		ts.Close()
	})

	mustDial(t, ts.Listener.Addr().String(), "stuck", dialOptions{rcvbuf: 1024, noRead: true})
	deadline := time.Now().Add(20 * time.Second)
	for hub.Stats().Opened == 0 || hub.Stats().Subscribers > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the client that never reads was not dropped: %+v", hub.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := hub.Stats()
	if st.HeartbeatFailures == 0 {
		t.Errorf("no failed heartbeat counted for a client dropped for not reading: %+v", st)
	}
}
