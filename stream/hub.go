// Package stream holds the subscribers of the live count, the count itself,
// who is online, and the fan-out of "user count", "people count" and
// "user" events over Server-Sent Events.
//
// The SSE wire is written by github.com/r3labs/sse/v2, used so that its
// known traps cannot bite: every subscriber has its own r3labs stream (one
// stalled client cannot block another's events, and removal is O(1)),
// events are only ever published with TryPublish, no event is empty, no
// r3labs callback or replay log is used, and Close ends every stream before
// closing the r3labs server.
package stream

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/r3labs/sse/v2"
)

// streamBufferSize is the number of events an r3labs stream queues before
// TryPublish refuses more: a cycle's hand-out (sendBudget) and room for a
// heartbeat, since the hub publishes a hand-out faster than the stream's
// goroutine moves it on; small, because only the latest state matters.
const streamBufferSize = sendBudget + 8

// Hub tracks the subscribers of this instance, keeps the count and sends
// every subscriber the count whenever it changes.
type Hub struct {
	cfg      Config
	counter  Counter
	limiter  Limiter // nil: the per-user limit is this instance's alone
	presence *presence
	sse      *sse.Server
	stats    liveStats
	// global and people are the counts of the latest broadcast: what
	// subscribers were last told. Only the broadcaster writes them.
	global atomic.Int64
	people atomic.Int64

	// dirty has one slot: a signal that the count or the set of registered
	// subscribers changed and the broadcaster should run a cycle.
	dirty chan struct{}
	// stop ends the broadcaster and heartbeat goroutines; workers waits for them.
	stop     chan struct{}
	stopOnce sync.Once
	workers  sync.WaitGroup
	sseOnce  sync.Once

	mu     sync.Mutex
	subs   map[uint64]*subscriber
	lastID uint64
	closed bool
	// drained is closed once the hub is closed and every Serve has left.
	drained chan struct{}
}

// NewHub returns a Hub serving with cfg and starts its broadcaster and
// heartbeat goroutines; Close stops them.
func NewHub(cfg Config) *Hub {
	cfg = cfg.withDefaults()
	s := sse.New()
	s.AutoReplay = false
	s.AutoStream = false
	s.BufferSize = streamBufferSize
	s.Headers = map[string]string{"X-Accel-Buffering": "no"}

	roster, _ := cfg.Counter.(Roster)
	limiter, _ := cfg.Counter.(Limiter)
	h := &Hub{
		cfg:      cfg,
		counter:  cfg.Counter,
		limiter:  limiter,
		presence: newPresence(roster, cfg.LeaveGrace),
		sse:      s,
		dirty:    make(chan struct{}, 1),
		stop:     make(chan struct{}),
		subs:     make(map[uint64]*subscriber),
		drained:  make(chan struct{}),
	}
	h.workers.Add(2)
	go h.runBroadcaster()
	go h.runHeartbeat()
	return h
}

// Serve streams the counts and announcements to one subscriber held by
// person p (p.ID names them; the profile is what others are shown), and returns
// when the stream ends (the client leaves, a write times out, or the hub
// closes). It returns ErrClosed, ErrInstanceLimit or ErrUserLimit without
// writing anything to w when it refuses the stream; the caller then writes
// the status.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, p Person) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	sub := &subscriber{person: p, cancel: cancel}
	sub.w = newResponseWriter(w, r, h.cfg.WriteTimeout, &h.stats, func() { h.markRegistered(sub) }, h.signal)
	if err := h.join(r.Context(), sub); err != nil {
		return err
	}
	h.sse.CreateStream(sub.stream)
	defer func() {
		cancel()
		// ServeHTTP has returned, so r3labs' context watcher has already
		// deregistered the subscriber: removing the stream leaks nothing.
		h.sse.RemoveStream(sub.stream)
		h.leave(sub)
		h.release(sub)
	}()

	// The client's own ?stream= and Last-Event-ID mean nothing here: one
	// would pick another subscriber's stream (or answer 500), the other
	// asks for a replay that does not exist (or answers 400 when garbage).
	r2 := r.Clone(ctx)
	r2.URL.RawQuery = "stream=" + sub.stream
	r2.Header.Del("Last-Event-ID")

	sub.w.clearDeadline()
	h.sse.ServeHTTP(sub.w, r2)
	// Give net/http's closing write of the response the same bounded time.
	sub.w.armDeadline()
	return nil
}

// limiterTimeout bounds the Limiter's answer on join; past it the hub
// holds to its local limit.
const limiterTimeout = time.Second

// join admits sub unless a limit or the hub's closing refuses it. With a
// Limiter, the per-user limit is checked across every instance first,
// outside the hub's lock (it is a round trip).
func (h *Hub) join(ctx context.Context, sub *subscriber) error {
	if err := h.admit(sub); err != nil {
		return err
	}
	if h.limiter != nil && h.cfg.MaxStreamsPerUser > 0 {
		ctx, cancel := context.WithTimeout(ctx, limiterTimeout)
		err := h.limiter.Acquire(ctx, sub.person, h.cfg.MaxStreamsPerUser)
		cancel()
		if errors.Is(err, ErrUserLimit) {
			h.stats.refusedUserLimit.Add(1)
			return ErrUserLimit
		}
		sub.reserved = true
	}
	if err := h.register(sub); err != nil {
		h.release(sub)
		return err
	}
	return nil
}

// release gives sub's reservation back to the Limiter, if it had one.
func (h *Hub) release(sub *subscriber) {
	if sub.reserved {
		sub.reserved = false
		h.limiter.Release(sub.person)
	}
}

// admit checks sub against the hub's state and limits, without taking it in.
func (h *Hub) admit(sub *subscriber) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refusal(sub)
}

// refusal is why sub cannot join now, or nil; h.mu is held.
func (h *Hub) refusal(sub *subscriber) error {
	switch {
	case h.closed:
		h.stats.refusedClosed.Add(1)
		return ErrClosed
	case h.cfg.MaxStreams > 0 && len(h.subs) >= h.cfg.MaxStreams:
		h.stats.refusedInstanceLimit.Add(1)
		return ErrInstanceLimit
	case h.cfg.MaxStreamsPerUser > 0 && h.presence.streams(sub.person.ID) >= h.cfg.MaxStreamsPerUser:
		h.stats.refusedUserLimit.Add(1)
		return ErrUserLimit
	}
	return nil
}

// register takes sub in, checking again (the hub may have closed, or
// filled, while the Limiter answered).
func (h *Hub) register(sub *subscriber) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.refusal(sub); err != nil {
		return err
	}
	h.lastID++
	sub.id = h.lastID
	sub.stream = "s" + strconv.FormatUint(sub.id, 10)
	h.subs[sub.id] = sub
	h.presence.join(sub.person)
	h.stats.subscribers.Store(int64(len(h.subs)))
	h.stats.opened.Add(1)
	h.signal()
	return nil
}

// markRegistered records that sub can now receive events, so the
// broadcaster sends it the current count.
func (h *Hub) markRegistered(sub *subscriber) {
	h.mu.Lock()
	sub.registered = true
	h.mu.Unlock()
	h.signal()
}

// leave forgets sub; the count goes down.
func (h *Hub) leave(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub.id)
	h.presence.leave(sub.person.ID)
	h.stats.subscribers.Store(int64(len(h.subs)))
	h.stats.closed.Add(1)
	if h.closed && len(h.subs) == 0 {
		close(h.drained)
	}
	h.signal()
}

// signal asks the broadcaster for a cycle without ever waiting: one pending
// signal covers any number of changes.
func (h *Hub) signal() {
	select {
	case h.dirty <- struct{}{}:
	default:
	}
}

// Count returns the global count of the latest broadcast: what subscribers
// were last told.
func (h *Hub) Count() int { return int(h.global.Load()) }

// People returns the people count of the latest broadcast: how many
// people (GitHub accounts) hold at least one stream.
func (h *Hub) People() int { return int(h.people.Load()) }

// Online returns who is online, in the order they came online, at most
// limit of them (all when limit is negative), and how many people are
// online in all. Each entry's Streams counts that person's streams on
// every instance.
func (h *Hub) Online(limit int) (people []PersonStreams, total int) {
	if h.cfg.CountOnly {
		limit = 0
	}
	return h.presence.list(limit)
}

// ShowsNames reports whether identities leave the server: false with
// Config.CountOnly (HEADCOUNT_PRESENCE=count).
func (h *Hub) ShowsNames() bool { return !h.cfg.CountOnly }

// Stats returns the hub's numbers.
func (h *Hub) Stats() Stats { return h.stats.snapshot(h.global.Load(), h.people.Load()) }

// Ready reports whether the hub takes streams: ErrClosed after Close, and
// the Counter's Ping error where the Counter can be pinged.
func (h *Hub) Ready(ctx context.Context) error {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if p, ok := h.counter.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	return nil
}

// closeGrace is how long Close lets streams end cleanly (their last
// chunk written, so clients see a finished response) before it makes the
// writes of clients that do not read fail at once.
const closeGrace = 500 * time.Millisecond

// Close ends every stream, waits for their Serve calls to return and stops
// the hub's goroutines. New streams are refused with ErrClosed from the
// start. Each stream's request context is cancelled first, so it ends with
// a clean end of response; a stream still blocked on a client that does not
// read after closeGrace has its writes failed at once. If ctx ends first,
// Close still stops the hub's goroutines and returns ctx.Err(); the
// streams, already told to end, finish on their own and calling Close again
// waits for them. Close is safe to call more than once and from several
// goroutines.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		if len(h.subs) == 0 {
			close(h.drained)
		}
		// Under the lock, so no subscriber's Serve has returned yet.
		for _, sub := range h.subs {
			sub.cancel()
		}
	}
	h.mu.Unlock()

	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	var err error
	select {
	case <-h.drained:
	case <-ctx.Done():
		err = ctx.Err()
	case <-grace.C:
		h.mu.Lock()
		for _, sub := range h.subs {
			sub.end()
		}
		h.mu.Unlock()
		select {
		case <-h.drained:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	h.stopOnce.Do(func() {
		close(h.stop)
		h.workers.Wait()
	})
	if err != nil {
		return err
	}
	h.sseOnce.Do(func() {
		// Every stream is removed by now, so r3labs has no subscriber whose
		// watcher goroutine could block on a closed stream.
		h.sse.Close()
	})
	return nil
}
