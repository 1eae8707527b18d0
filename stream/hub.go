// Package stream holds the subscribers of the live count, the count itself,
// who is online, and the fan-out of "user count", "people count", "user"
// and "count state" events over Server-Sent Events.
//
// The SSE wire is written by github.com/r3labs/sse/v2. Every subscriber
// joins one shared r3labs stream, into which only the broadcaster
// publishes, dropping any subscriber that falls behind before it can
// stall the others (see broadcast.go); a subscriber is one
// type (subscriber.go) whose life and delivery fit in one file. The
// invariants and r3labs' traps are written down in docs/design.md.
package stream

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/r3labs/sse/v2"
)

// sharedStream is the id of the one r3labs stream every subscriber joins.
const sharedStream = "all"

// Hub tracks the subscribers of this instance, keeps the count and sends
// every subscriber the count whenever it changes.
type Hub struct {
	cfg      Config
	counter  Counter
	presence *presence
	limiter  Limiter // nil: the per-user limit is this instance's alone
	sse      *sse.Server
	// hangups notices hijacked connections' clients leaving; nil where
	// each has a readConn instead.
	hangups *hangups
	stats   liveStats
	// global and people are the counts of the latest broadcast: what
	// subscribers were last told. Only the broadcaster writes them.
	global atomic.Int64
	people atomic.Int64
	// published counts the r3labs events published, heartbeats included
	// (a cycle's events travel as one): how far behind a subscriber is
	// (dropLagging, in broadcast.go).
	published atomic.Uint64
	// delivered counts the subscribers that have flushed (written or
	// dropped) the event whose first id is measured (the latest cycle's
	// one), and deliveredAt (Unix nanoseconds) is about when the latest
	// did: stamped by the one that makes delivered reach deliverTo (those
	// registered at the cycle) and by every 64th before it. That is how
	// the broadcaster measures what a broadcast costs (broadcast.go).
	measured  atomic.Uint64
	deliverTo atomic.Int64
	// moves counts joins (registrations) and leaves of registered
	// subscribers: how many changes a cycle merges (pace), and with the
	// streams waiting to be registered (arriving), whether a burst is
	// still going on (settle).
	moves atomic.Uint64
	// departing counts the streams whose clients have hung up and that
	// are not yet counted out (subscriber.clientLeft to Hub.leave): leaves
	// on their way, as arriving counts joins. A mass departure's first
	// leave is no lone change while they are (pace).
	departing atomic.Int64
	// hungUp counts the streams whose clients have hung up, ever.
	hungUp atomic.Uint64
	// shared is the first id of the latest event for everyone streaming.
	shared atomic.Uint64
	// beatAt is the publish count (published) of the latest heartbeat,
	// stored before it is published, and sharedAt that of the latest
	// event for everyone streaming, stored once it is: a heartbeat with
	// such an event behind it is not written (beatFollowed).
	beatAt      atomic.Uint64
	sharedAt    atomic.Uint64
	delivered   atomic.Int64
	deliveredAt atomic.Int64
	// request is what r3labs is handed for every subscriber, with the
	// subscriber's context: the shared stream, no client header.
	request *http.Request

	// dirty has one slot: a signal that the count or the set of registered
	// subscribers changed and the broadcaster should run a cycle.
	dirty chan struct{}
	// stop ends the broadcaster goroutine; workers waits for it.
	stop     chan struct{}
	stopOnce sync.Once
	workers  sync.WaitGroup
	sseOnce  sync.Once

	mu      sync.Mutex
	subs    map[*subscriber]struct{} // admitted and not yet gone
	perUser map[string]int
	// registered counts the subscribers r3labs has registered with the
	// shared stream: the local count. newcomers are those registered since
	// the broadcaster last read it; their first event is the next cycle's.
	registered int
	newcomers  []*subscriber
	closed     bool
	// drained is closed once the hub is closed and every subscriber has left.
	drained chan struct{}
}

// NewHub returns a Hub serving with cfg and starts its broadcaster; Close
// stops it.
func NewHub(cfg Config) *Hub {
	cfg = cfg.withDefaults()
	s := sse.New()
	s.AutoReplay = false
	s.AutoStream = false
	s.BufferSize = streamQueue
	s.Headers = map[string]string{"X-Accel-Buffering": "no"}
	s.CreateStream(sharedStream)

	roster, _ := cfg.Counter.(Roster)
	limiter, _ := cfg.Counter.(Limiter)
	h := &Hub{
		cfg:      cfg,
		counter:  cfg.Counter,
		presence: newPresence(roster, cfg.LeaveGrace),
		limiter:  limiter,
		sse:      s,
		hangups:  newHangups(),
		request:  &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/events", RawQuery: "stream=" + sharedStream}},
		dirty:    make(chan struct{}, 1),
		stop:     make(chan struct{}),
		subs:     make(map[*subscriber]struct{}),
		perUser:  make(map[string]int),
		drained:  make(chan struct{}),
	}
	h.workers.Add(1)
	go h.runBroadcaster()
	return h
}

// Serve streams the counts and announcements to one subscriber held by
// person p (p.ID names them; the profile is what others are shown). It
// returns ErrClosed, ErrInstanceLimit or ErrUserLimit without writing
// anything to w when it refuses the stream; the caller then writes the
// status.
//
// An HTTP/1.1 connection is taken over (hijacked): the hub writes the
// response itself, notices the client leaving by watching the connection,
// and closes it when the stream ends. Anything else (HTTP/2, a writer
// that cannot be hijacked) is served through w. Serve returns when the
// stream ends (the client leaves, a write fails or times out, the hub
// closes, or r's context is done), unless r's context carries a
// Lifetime: then a hijacked stream is served on goroutines of the hub's
// and Serve returns at once, the Lifetime saying what else ends it.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, p Person) error {
	lt, detach := lifetimeOf(r.Context())
	parent := r.Context()
	if detach {
		// The stream may outlive the request: its own context, ended by
		// the request only while that is served through w (below).
		parent = context.Background()
	}
	sub, err := h.join(parent, p)
	if err != nil {
		return err
	}
	sub.ended = lt.Ended
	sub.remote = r.RemoteAddr
	if lt.Until != nil {
		sub.unlink = append(sub.unlink, context.AfterFunc(lt.Until, sub.cancel))
	}
	if r.ProtoAtLeast(1, 1) && r.ProtoMajor == 1 {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			// What middleware put in the head (security headers) still goes out.
			sub.takeOver(conn, w.Header().Clone())
			if lt.TakenOver != nil {
				lt.TakenOver()
			}
			if detach {
				go sub.serveConn()
			} else {
				sub.serveConn()
			}
			return nil
		}
	}
	if detach {
		sub.unlink = append(sub.unlink, context.AfterFunc(r.Context(), sub.cancel))
	}
	sub.serveResponse(w, r)
	return nil
}

// limiterTimeout bounds the Limiter's answer on join; past it the hub
// holds to its local limit.
const limiterTimeout = time.Second

// join admits a stream of p unless a limit or the hub's closing refuses
// it. With a Limiter, the per-user limit is checked across every instance
// first, outside the hub's lock (it is a round trip).
func (h *Hub) join(ctx context.Context, p Person) (*subscriber, error) {
	if _, err := h.admit(ctx, p, false); err != nil {
		return nil, err
	}
	reserved := false
	if h.limiter != nil && h.cfg.MaxStreamsPerUser > 0 {
		ctx, cancel := context.WithTimeout(ctx, limiterTimeout)
		err := h.limiter.Acquire(ctx, p, h.cfg.MaxStreamsPerUser)
		cancel()
		if errors.Is(err, ErrUserLimit) {
			h.stats.refusedUserLimit.Add(1)
			return nil, ErrUserLimit
		}
		reserved = true
	}
	// Again: the hub may have closed, or filled, while the Limiter answered.
	sub, err := h.admit(ctx, p, true)
	if err != nil {
		if reserved {
			h.limiter.Release(p)
		}
		return nil, err
	}
	sub.reserved = reserved
	return sub, nil
}

// admit checks a stream of p against the hub's state and limits and, with
// take, takes it in: a new subscriber counted against the limits, with a
// context of its own under ctx (the request's).
func (h *Hub) admit(ctx context.Context, p Person, take bool) (*subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		h.stats.refusedClosed.Add(1)
		return nil, ErrClosed
	case h.cfg.MaxStreams > 0 && len(h.subs) >= h.cfg.MaxStreams:
		h.stats.refusedInstanceLimit.Add(1)
		return nil, ErrInstanceLimit
	case h.cfg.MaxStreamsPerUser > 0 && h.perUser[p.ID] >= h.cfg.MaxStreamsPerUser:
		h.stats.refusedUserLimit.Add(1)
		return nil, ErrUserLimit
	case !take:
		return nil, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	sub := &subscriber{hub: h, person: p, ctx: ctx, cancel: cancel}
	sub.from.Store(math.MaxUint64)
	h.subs[sub] = struct{}{}
	h.perUser[p.ID]++
	h.stats.subscribers.Store(int64(len(h.subs)))
	h.stats.opened.Add(1)
	return sub, nil
}

// register counts sub in: r3labs has just registered it with the shared
// stream, so every event published from now on reaches it.
func (h *Hub) register(sub *subscriber) {
	h.mu.Lock()
	// Where it starts: the events published before r3labs registered it
	// never reach it, however many went out while it waited for the relay
	// loop to take it in (a ramp: hundreds wait while the loop hands out
	// events), so it is not behind by them.
	sub.at.Store(h.published.Load())
	sub.registered = true
	h.registered++
	h.moves.Add(1)
	h.newcomers = append(h.newcomers, sub)
	h.presence.join(sub.person)
	h.mu.Unlock()
	h.signal()
}

// leave forgets sub, whose stream has ended; the count goes down.
func (h *Hub) leave(sub *subscriber) {
	for _, stop := range sub.unlink {
		stop()
	}
	if sub.reserved {
		h.limiter.Release(sub.person)
	}
	if sub.ended != nil {
		// Before the hub forgets sub: Close waits for the last stream to
		// leave, and what Ended does (the request line) must be done by
		// then.
		sub.ended()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !sub.gone.CompareAndSwap(false, true) {
		h.departing.Add(-1) // its hangup was counted (clientLeft)
	}
	delete(h.subs, sub)
	if n := h.perUser[sub.person.ID] - 1; n > 0 {
		h.perUser[sub.person.ID] = n
	} else {
		delete(h.perUser, sub.person.ID)
	}
	if sub.registered {
		h.registered--
		h.moves.Add(1)
		h.presence.leave(sub.person.ID)
	}
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

// Close ends every stream, waits until every subscriber has left (its
// connection closed, when the hub had taken it over) and stops the
// broadcaster. New streams are refused with ErrClosed from the start.
// Each stream's context is cancelled first, so it ends with a clean end of
// response; a stream still blocked on a client that does not read after
// closeGrace has its writes failed at once. If ctx ends first, Close still
// stops the broadcaster and returns ctx.Err(); the streams, already told
// to end, finish on their own and calling Close again waits for them.
// Close is safe to call more than once and from several goroutines.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		if len(h.subs) == 0 {
			close(h.drained)
		}
		for sub := range h.subs {
			sub.stop()
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
		for sub := range h.subs {
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
		h.hangups.stop()
	})
	if err != nil {
		return err
	}
	h.sseOnce.Do(func() {
		// Every subscriber has left, so r3labs has deregistered them all and
		// no context watcher of theirs can block on the closed stream.
		h.sse.Close()
	})
	return nil
}
