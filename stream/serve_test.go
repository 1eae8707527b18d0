package stream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// serveIn serves w on h as p on a goroutine of served, with a request
// under ctx: ending ctx ends the stream. A refused stream fails tb.
func serveIn(ctx context.Context, tb testing.TB, served *sync.WaitGroup, h *Hub, w http.ResponseWriter, p Person) {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/events", nil)
	served.Go(func() {
		if err := h.Serve(w, r, p); err != nil {
			tb.Error(err)
		}
	})
}

// servedHub is a hub with cfg whose streams a test serves in memory
// (serveIn) under ctx.
type servedHub struct {
	*Hub
	ctx    context.Context
	cancel context.CancelFunc
	served sync.WaitGroup
}

func newServedHub(cfg Config) *servedHub {
	ctx, cancel := context.WithCancel(context.Background())
	return &servedHub{Hub: NewHub(cfg), ctx: ctx, cancel: cancel}
}

// serve serves w as p under ctx, which is s.ctx or one under it.
func (s *servedHub) serve(ctx context.Context, tb testing.TB, w http.ResponseWriter, p Person) {
	serveIn(ctx, tb, &s.served, s.Hub, w, p)
}

// stop ends every stream, waits for their Serve calls and closes the hub.
func (s *servedHub) stop() {
	s.cancel()
	s.served.Wait()
	s.Close(context.Background())
}
