package stream

import (
	"context"
	"time"

	"github.com/r3labs/sse/v2"
)

const (
	// publishRetry is how soon a count is offered again to a subscriber
	// whose buffer was full: a slow but live client still ends on the
	// latest value, while the write deadline drops a stuck one.
	publishRetry = 50 * time.Millisecond
	// storeRetry is how soon a failed Counter.Store is tried again.
	storeRetry = 500 * time.Millisecond
	// storeTimeout bounds one Counter.Store, so a hung back end cannot
	// stall the broadcaster for long.
	storeTimeout = 2 * time.Second
	// fanoutCost is roughly what one event costs to write (see
	// BenchmarkBroadcast). The gap after a broadcast grows with the number
	// of subscribers it reached, so a steady churn among very many
	// subscribers costs at most about one core, however many there are.
	fanoutCost = 5 * time.Microsecond
)

// broadcaster is the state of the broadcaster goroutine, touched by no other.
type broadcaster struct {
	version  uint64 // id of the latest count event; 0 before the first
	global   int    // the count at version
	failing  bool   // the last Store failed (log once per outage)
	batch    []*subscriber
	lastTime time.Time // start of the latest cycle
	reached  int       // subscribers handed an event in the latest cycle
}

// gap is the least time from the latest cycle to the next one. coalesce
// is Config.Coalesce after defaults: zero there means merging is off.
func (b *broadcaster) gap(coalesce time.Duration) time.Duration {
	if coalesce == 0 {
		return 0
	}
	return max(coalesce, time.Duration(b.reached)*fanoutCost)
}

// runBroadcaster sends count events until Close. Every signal, Counter
// change or retry leads to one cycle; signals that arrive while a cycle
// waits or runs are merged into the next one.
func (h *Hub) runBroadcaster() {
	defer h.workers.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-h.stop
		cancel()
	}()

	var b broadcaster
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	defer gap.Stop()
	changes := h.counter.Changes()

	for {
		select {
		case <-h.stop:
			return
		case <-h.dirty:
		case <-changes:
		case <-retry.C:
		}
		// The first change after a quiet time goes out at once; later ones
		// wait for the gap and are merged.
		if wait := b.gap(h.cfg.Coalesce) - time.Since(b.lastTime); wait > 0 {
			gap.Reset(wait)
			select {
			case <-h.stop:
				return
			case <-gap.C:
			}
		}
		// This cycle reads the latest state, so a signal sent before now is served by it.
		select {
		case <-h.dirty:
		default:
		}
		b.lastTime = time.Now()
		if again := h.cycle(ctx, &b); again > 0 {
			retry.Reset(again)
		}
	}
}

// cycle stores the local count, learns the global one and sends it to every
// registered subscriber that has not got it yet. It returns how soon to run
// again for a subscriber or a Store that failed, or 0.
func (h *Hub) cycle(ctx context.Context, b *broadcaster) time.Duration {
	h.mu.Lock()
	local := len(h.subs)
	// Subscribers that join after this point are not in local: they wait
	// for the next cycle, which their join signalled, so that the first
	// event anyone gets counts them in.
	counted := h.lastID
	h.mu.Unlock()

	var again time.Duration
	storeCtx, cancel := context.WithTimeout(ctx, storeTimeout)
	global, err := h.counter.Store(storeCtx, local)
	cancel()
	switch {
	case err != nil:
		if !b.failing && ctx.Err() == nil {
			h.cfg.Logger.Warn("stream: storing the count failed; keeping the last global count", "local", local, "err", err)
		}
		b.failing = true
		again = storeRetry
	case b.failing:
		h.cfg.Logger.Info("stream: storing the count works again", "local", local, "global", global)
		b.failing = false
	}
	if err != nil {
		// The global count is unknown: a new subscriber's first event
		// would not count it, so nobody gets anything until Store works.
		return again
	}
	if global != b.global || b.version == 0 {
		b.version++
		b.global = global
		h.global.Store(int64(global))
		h.stats.broadcasts.Add(1)
	}

	b.reached = 0
	b.batch = b.batch[:0]
	h.mu.Lock()
	for _, sub := range h.subs {
		if sub.registered && sub.id <= counted && sub.sent < b.version {
			b.batch = append(b.batch, sub)
		}
	}
	h.mu.Unlock()
	if len(b.batch) == 0 {
		return again
	}

	// Two shared events per cycle: r3labs only reads them.
	first := countEvent(b.version, b.global, h.cfg.Retry)
	next := countEvent(b.version, b.global, 0)
	for i, sub := range b.batch {
		ev := next
		if sub.sent == 0 {
			ev = first
		}
		switch h.sendCount(sub, ev) {
		case handed:
			sub.sent = b.version
			b.reached++
		case full:
			if again == 0 || again > publishRetry {
				again = publishRetry
			}
		case busy:
			// Its Flush signals once the earlier event is written.
		}
		b.batch[i] = nil // let a gone subscriber be collected
	}
	return again
}

// delivery is what became of a count event offered to a subscriber.
type delivery int

const (
	handed delivery = iota // the stream took it (or has ended meanwhile)
	busy                   // an earlier event is still being written
	full                   // the stream's buffer is full
)

// sendCount hands a count event to sub unless an earlier event is still on
// its way. A subscriber so never has more than one count queued, and after
// a burst its next event is the latest count, not a backlog of stale ones.
func (h *Hub) sendCount(sub *subscriber, ev *sse.Event) delivery {
	w := sub.w
	// Owing before looking at pending, while Flush lowers pending before
	// looking at owed: either this sees the stream idle or Flush sees the
	// debt and signals, so no count is forgotten.
	w.owed.Store(true)
	if w.pending.Load() > 0 {
		h.stats.skipped.Add(1)
		return busy
	}
	if !h.publish(sub, ev) {
		h.stats.skipped.Add(1)
		return full
	}
	w.owed.Store(false)
	return handed
}

// publish hands ev to sub's stream without waiting and reports whether it
// was taken. A full buffer means the client is not reading (fast enough).
func (h *Hub) publish(sub *subscriber, ev *sse.Event) bool {
	sub.w.pending.Add(1)
	if h.sse.TryPublish(sub.stream, ev) {
		return true
	}
	sub.w.pending.Add(-1)
	// A stream that ended since the snapshot is owed nothing.
	return !h.sse.StreamExists(sub.stream)
}
