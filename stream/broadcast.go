package stream

import (
	"context"
	"errors"
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

// sendBudget is the most events handed to one subscriber per cycle: well
// inside what its r3labs stream queues (8 in the stream's buffer, 64 in
// the subscriber's), so a catching-up subscriber never fills it.
const sendBudget = 32

// broadcaster is the state of the broadcaster goroutine, touched by no other.
type broadcaster struct {
	seq     uint64 // the last event id handed out; ids only grow, whatever the event
	started bool   // the first counts are known and logged
	global  int    // the user count in the log
	people  int    // the people count in the log
	partial bool   // the counts in the log are this instance's best knowledge
	log     eventLog
	failing bool // the last Store failed (log once per outage)
	// peopleFailing: the last Roster call failed (log once per outage)
	peopleFailing bool
	batch         []*subscriber
	plans         []plan
	handouts      map[handoutKey]*handout // for one cycle
	lastTime      time.Time               // start of the latest cycle
	reached       int                     // subscribers handed an event in the latest cycle
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

// cycle stores the local count, learns the global counts and who came
// online or went offline, logs what changed and hands every registered
// subscriber what it has not got yet. It returns how soon to run again for
// a subscriber, a Store that failed or someone leaving, or 0.
func (h *Hub) cycle(ctx context.Context, b *broadcaster) time.Duration {
	h.mu.Lock()
	local := len(h.subs)
	// Subscribers that join after this point are not in local: they wait
	// for the next cycle, which their join signalled, so that the first
	// event anyone gets counts them in.
	counted := h.lastID
	taken := h.presence.take()
	h.mu.Unlock()

	var again time.Duration
	storeCtx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	global, err := h.counter.Store(storeCtx, local)
	partial := errors.Is(err, ErrPartial)
	switch {
	case err != nil:
		if !b.failing && ctx.Err() == nil {
			h.cfg.Logger.Warn("stream: storing the count failed; sending this instance's best knowledge", "local", local, "err", err)
		}
		b.failing = true
		again = storeRetry
	case b.failing:
		h.cfg.Logger.Info("stream: storing the count works again", "local", local, "global", global)
		b.failing = false
	}
	h.stats.partial.Store(partial)
	if err != nil && !partial {
		// The global count is unknown: a new subscriber's first event
		// would not count it, so nobody gets anything until Store works.
		h.presence.untake(taken)
		return again
	}
	pc, perr := h.presence.cycle(storeCtx, taken, time.Now())
	switch {
	case perr != nil:
		if !b.peopleFailing && ctx.Err() == nil {
			h.cfg.Logger.Warn("stream: storing who is online failed; keeping the last people count", "err", perr)
		}
		b.peopleFailing = true
		again = storeRetry
	case b.peopleFailing:
		h.cfg.Logger.Info("stream: storing who is online works again", "people", pc.people)
		b.peopleFailing = false
	}
	if perr != nil && !b.started {
		return again
	}
	if pc.recheck > 0 && (again == 0 || pc.recheck < again) {
		again = pc.recheck
	}
	h.logChanges(b, global, pc, perr == nil)
	if partial != b.partial {
		// Told after the counts it qualifies, so a page never shows a
		// count as exact that was only this instance's best knowledge.
		b.seq++
		b.log.add(&logEntry{id: b.seq, key: "state", ev: stateEvent(b.seq, partial)})
		b.partial = partial
	}

	head := b.log.head()
	oldest := head
	b.reached = 0
	b.batch = b.batch[:0]
	h.mu.Lock()
	for _, sub := range h.subs {
		if sub.sent > 0 && sub.cursor < oldest {
			oldest = sub.cursor
		}
		if sub.registered && sub.id <= counted && (sub.sent == 0 || sub.cursor < head) {
			b.batch = append(b.batch, sub)
		}
	}
	h.mu.Unlock()
	b.log.prune(oldest)
	if len(b.batch) == 0 {
		return again
	}

	// What each subscriber is handed is shared by all at the same cursor
	// (nearly everyone is at the last head): a new subscriber's first two
	// events, the counts now, with ids after everything logged so far and
	// the head as its cursor (what happened before is /api/presence's);
	// for the others, the live log entries after their cursor.
	clear(b.handouts)
	if b.handouts == nil {
		b.handouts = make(map[handoutKey]*handout)
	}
	var first *handout
	b.plans = b.plans[:0]
	for _, sub := range b.batch {
		var ho *handout
		if sub.sent == 0 {
			if first == nil {
				b.seq++
				c := countEvent(b.seq, b.global, h.cfg.Retry)
				b.seq++
				first = &handout{
					evs:     []*sse.Event{c, peopleEvent(b.seq, b.people)},
					ids:     []uint64{b.seq - 1, b.seq},
					cursors: []uint64{head, head},
					first:   true,
				}
				if b.partial {
					b.seq++
					first.evs = append(first.evs, stateEvent(b.seq, true))
					first.ids = append(first.ids, b.seq)
					first.cursors = append(first.cursors, head)
				}
			}
			ho = first
		} else {
			// A stream that was handed events made afresh has ids beyond
			// the log's: it gets events made afresh until it has caught up.
			key := handoutKey{cursor: sub.cursor, fresh: sub.sent >= b.log.firstAfter(sub.cursor)}
			if ho = b.handouts[key]; ho == nil {
				ho = h.handoutAfter(b, key)
				b.handouts[key] = ho
			}
		}
		b.plans = append(b.plans, plan{sub: sub, ho: ho})
	}

	// Two passes: every subscriber's first event (the user count, when it
	// changed) before anyone's second, so the people count and the
	// announcements never delay the user count of the last subscriber.
	for i := range b.plans {
		pl := &b.plans[i]
		pl.n, pl.d = h.send(pl.sub, pl.ho.evs[:1], pl.ho.more)
	}
	for i := range b.plans {
		pl := &b.plans[i]
		if pl.n == 1 && len(pl.ho.evs) > 1 {
			pl.n, pl.d = h.sendRest(pl.sub, pl.ho.evs, pl.ho.more)
		}
		sub, ho, n := pl.sub, pl.ho, pl.n
		// A first pair is handed whole or not at all (into an empty
		// stream it always fits); it is made again next cycle.
		if n > 0 && (!ho.first || n == len(ho.evs)) {
			sub.sent, sub.cursor = ho.ids[n-1], ho.cursors[n-1]
		}
		if n > 0 {
			b.reached++
		}
		if pl.d == full && (again == 0 || again > publishRetry) {
			again = publishRetry
		}
		// busy: its Flush signals once the earlier events are written.
	}
	clear(b.plans) // let gone subscribers be collected
	clear(b.batch)
	return again
}

// handout is what the subscribers at one cursor are handed this cycle.
type handout struct {
	evs     []*sse.Event // in order
	ids     []uint64     // the id of each of evs
	cursors []uint64     // a subscriber's cursor once evs[:i+1] are handed
	more    bool         // the log holds more than the send budget
	first   bool         // a new subscriber's first pair
}

// handoutKey names the hand-out of the subscribers at one cursor that
// can, or cannot (fresh), take the log's own events.
type handoutKey struct {
	cursor uint64
	fresh  bool
}

// handoutAfter is the hand-out of the subscribers at key.cursor: the live
// log entries after it, up to the budget. One that is further behind than
// that (a burst of arrivals, a slow client), or was handed events made
// afresh before (key.fresh), gets the counts now first, then the oldest
// announcements it is owed, all made afresh with new ids and the counts of
// now: the true counts reach it at once, ids only grow on its stream, and
// no event it gets carries older counts than one before it.
func (h *Hub) handoutAfter(b *broadcaster, key handoutKey) *handout {
	cursor := key.cursor
	entries, more := b.log.after(cursor, sendBudget, nil)
	ho := &handout{more: more}
	if !more && !key.fresh {
		for _, e := range entries {
			ho.evs = append(ho.evs, e.ev)
			ho.ids = append(ho.ids, e.id)
			ho.cursors = append(ho.cursors, e.id)
		}
		return ho
	}
	add := func(ev *sse.Event, cursor uint64) {
		ho.evs = append(ho.evs, ev)
		ho.ids = append(ho.ids, b.seq)
		ho.cursors = append(ho.cursors, cursor)
	}
	b.seq++
	add(countEvent(b.seq, b.global, 0), cursor)
	b.seq++
	add(peopleEvent(b.seq, b.people), cursor)
	if st := b.log.byKey["state"]; b.partial || st != nil && st.id > cursor {
		b.seq++
		add(stateEvent(b.seq, b.partial), cursor)
	}
	for _, e := range entries {
		if e.who == nil || len(ho.evs) == sendBudget {
			continue // the counts and their state are there already
		}
		b.seq++
		add(userEvent(b.seq, *e.who, b.global, b.people), e.id)
	}
	if !more && len(entries) > 0 {
		// Handed whole, it accounts for the log's counts as well.
		ho.cursors[len(ho.cursors)-1] = entries[len(entries)-1].id
	}
	return ho
}

// plan is one subscriber's hand-out in a cycle and how it went.
type plan struct {
	sub *subscriber
	ho  *handout
	n   int // events the stream took
	d   delivery
}

// logChanges logs the events of this cycle, in the order a subscriber gets
// them: the user count if it changed, the people count if it changed, and
// one user event per person who came online or went offline. With
// peopleKnown false (the Roster failed) only the user count can move.
func (h *Hub) logChanges(b *broadcaster, global int, pc presenceCycle, peopleKnown bool) {
	if global != b.global || !b.started {
		b.seq++
		b.log.add(&logEntry{id: b.seq, key: "count", ev: countEvent(b.seq, global, 0)})
		b.global = global
		h.global.Store(int64(global))
		h.stats.broadcasts.Add(1)
	}
	if !peopleKnown {
		b.started = true
		return
	}
	if pc.people != b.people || !b.started {
		b.seq++
		b.log.add(&logEntry{id: b.seq, key: "people", ev: peopleEvent(b.seq, pc.people)})
		b.people = pc.people
		h.people.Store(int64(pc.people))
	}
	b.started = true
	if h.cfg.CountOnly {
		return
	}
	for _, t := range pc.transitions {
		b.seq++
		b.log.add(&logEntry{
			id:        b.seq,
			key:       "user:" + t.ID,
			ev:        userEvent(b.seq, t, b.global, b.people),
			who:       &t,
			departure: !t.Connected,
		})
		h.stats.announcements.Add(1)
	}
}

// delivery is what became of a count event offered to a subscriber.
type delivery int

const (
	handed delivery = iota // the stream took it (or has ended meanwhile)
	busy                   // an earlier event is still being written
	full                   // the stream's buffer is full
)

// send hands evs to sub, in order, unless an earlier event is still on
// its way. A subscriber so never has more than one cycle's events queued,
// and after a burst its next events are the latest state, not a backlog
// of stale ones. more says that the log holds more for sub than evs: it
// stays owed, so the Flush that drains it asks for another cycle. It
// returns how many events the stream took.
func (h *Hub) send(sub *subscriber, evs []*sse.Event, more bool) (int, delivery) {
	w := sub.w
	// Owing before looking at pending, while Flush lowers pending before
	// looking at owed: either this sees the stream idle or Flush sees the
	// debt and signals, so no event is forgotten.
	w.owed.Store(true)
	if w.pending.Load() > 0 {
		h.stats.skipped.Add(1)
		return 0, busy
	}
	for i, ev := range evs {
		if !h.publish(sub, ev) {
			h.stats.skipped.Add(1)
			return i, full
		}
	}
	if !more {
		w.owed.Store(false)
	}
	return len(evs), handed
}

// sendRest hands evs[1:] to sub, whose stream took evs[0] in this very
// cycle, and returns how many of evs the stream took in all. A stream
// that could not take them all is retried (full); one owed more than the
// budget is signalled for once its events are written.
func (h *Hub) sendRest(sub *subscriber, evs []*sse.Event, more bool) (int, delivery) {
	for i, ev := range evs[1:] {
		if !h.publish(sub, ev) {
			h.stats.skipped.Add(1)
			return 1 + i, full
		}
	}
	if more {
		// As in send: owing first, then looking at pending, so either
		// its Flush sees the debt or this sees it all written.
		sub.w.owed.Store(true)
		if sub.w.pending.Load() == 0 {
			h.signal()
		}
	}
	return len(evs), handed
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
