package stream

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/r3labs/sse/v2"
)

// The broadcaster is the only goroutine that publishes into the shared
// r3labs stream. Its events reach every subscriber in one order, so ids
// only grow; its rate is bounded (publishBudget), so a subscriber that
// stops reading is dropped by its write deadline before its 64-slot r3labs
// channel can fill and block the stream's relay loop for everyone. A
// cycle's events (the counts that changed, then one "user" event per
// person who came or went) travel as one r3labs event (see cycleEvent), so
// the budget is counted in cycles, however many people move.

const (
	// publishBudget is how many events may be published within any
	// window of WriteTimeout plus a margin: below the 64 slots of a
	// subscriber's channel, with room for the event being written.
	publishBudget = subscriberBuffer - 4
	// publishBurst is how many of them may go at once after a quiet time.
	publishBurst = 16
	// storeRetry is how soon a failed Counter.Store is tried again.
	storeRetry = 500 * time.Millisecond
	// storeTimeout bounds one Counter.Store, so a hung back end cannot
	// stall the broadcaster for long.
	storeTimeout = 2 * time.Second
	// deliveryCheck is how often the broadcaster looks whether the latest
	// broadcast has reached everyone, while it waits to pace the next.
	deliveryCheck = 5 * time.Millisecond
	// deliveryIdle is how long without a single subscriber writing the
	// latest broadcast ends the wait for the rest.
	deliveryIdle = 50 * time.Millisecond
	// paceFactor: a broadcast to many may start no sooner than this many
	// times the previous one's delivery time after that one went out, so
	// the fan-out is busy at most 1/paceFactor of the time while the count
	// keeps changing. Beside CPU, that is time r3labs' relay loop is busy
	// and cannot register or deregister anyone: joins and leaves wait for it.
	paceFactor = 4
	// burstPaceFactor replaces it while subscribers arrive in bulk (at
	// least burstNewcomers in one cycle: a restart's reconnections), when
	// every broadcast also holds up that many registrations.
	burstPaceFactor = 8
	burstNewcomers  = 100
	// maxPace bounds the wait, so every subscriber still hears the true
	// count within the contract's second after a burst.
	maxPace = 400 * time.Millisecond
	// quietGap is how long the fan-out must have been idle for a change to
	// go out unpaced: the count is not "changing all the time".
	quietGap = 200 * time.Millisecond
	// paceFrom is the least broadcast worth pacing: below it a fan-out
	// costs next to nothing.
	paceFrom = 1000
	// reserveTokens are the publish tokens a burst of changes leaves in the
	// bucket for telling everyone where it ended: the last counts, the
	// newcomers' first events and, a leave grace later, who went offline.
	// Without them, a burst long enough to empty the bucket left the end
	// waiting a quarter second (WriteTimeout/44) per event, and the
	// contract's second was gone.
	reserveTokens = 3
	// burstOver is how long without a change means a burst has ended, so
	// a cycle may take the reserve.
	burstOver = 100 * time.Millisecond
)

// broadcaster is the state of the broadcaster goroutine, touched by no other.
type broadcaster struct {
	seq     uint64 // the last event id handed out; ids only grow, whatever the event
	started bool   // the first counts are out
	global  int    // the user count last published
	people  int    // the people count last published
	partial bool   // the counts published are this instance's best knowledge
	failing bool   // the last Store failed (log once per outage)
	// peopleFailing: the last Roster call failed (log once per outage)
	peopleFailing bool
	lastTime      time.Time // when the latest cycle started
	lastChange    time.Time // when the latest change was signalled
	// sentAt and reached are when the latest cycle's event went out and
	// to how many subscribers (those registered then); newcomers is how
	// many of them it was the first event of.
	sentAt    time.Time
	reached   int
	newcomers int
	limit     limiter
	// waiting are newcomers counted in but not yet sent their first
	// events; changed and first are the current cycle's events.
	waiting []*subscriber
	changed []eventFields
	first   []eventFields
}

// limiter is a token bucket over published events: at most publishBurst
// at once, and publishBudget within any window of the given length.
type limiter struct {
	tokens float64
	rate   float64 // tokens per second
	last   time.Time
}

// newLimiter fills the bucket for a window (WriteTimeout plus margin):
// publishBurst + rate·window = publishBudget.
func newLimiter(window time.Duration, now time.Time) limiter {
	return limiter{
		tokens: publishBurst,
		rate:   float64(publishBudget-publishBurst) / window.Seconds(),
		last:   now,
	}
}

// refill adds the tokens earned since the last look.
func (l *limiter) refill(now time.Time) {
	l.tokens = min(publishBurst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
}

// untilAbove returns how long until a token can be taken with keep
// tokens left in the bucket: 0 if now.
func (l *limiter) untilAbove(now time.Time, keep float64) time.Duration {
	l.refill(now)
	if short := keep + 1 - l.tokens; short > 0 {
		return time.Duration(short / l.rate * float64(time.Second))
	}
	return 0
}

// take takes one token and returns how long to wait before using it.
func (l *limiter) take(now time.Time) time.Duration {
	l.refill(now)
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// tryTake takes a token if one is there now, and reports whether it did.
func (l *limiter) tryTake(now time.Time) bool {
	if l.take(now) == 0 {
		return true
	}
	l.tokens++ // not taken after all
	return false
}

// pace waits, after the latest broadcast, until the fan-out has been idle
// for paceFactor-1 times as long as that broadcast took to reach everyone
// (as measured by the subscribers' flushes), so that while the count keeps
// changing (a ramp of joins, a mass leave) the fan-out takes at most a
// quarter of the time and the rest goes to accepting and closing
// connections. The cost of a broadcast
// is measured, never assumed: it grows with the subscribers and with
// whatever else the machine is doing. A change after quietGap of idle
// fan-out goes out at once. Subscribers that do not write it
// (stuck, or gone) delay nobody: the delivery counts as over once no
// flush has come for deliveryIdle. It reports false if the hub stopped
// meanwhile.
func (h *Hub) pace(b *broadcaster) bool {
	if h.cfg.Coalesce == 0 || b.reached < paceFrom {
		return true
	}
	seen, movedAt := int64(-1), time.Now()
	for range int(h.cfg.WriteTimeout/deliveryCheck) + 1 {
		n := h.delivered.Load()
		if n != seen {
			seen, movedAt = n, time.Now()
		}
		if n >= int64(b.reached) || time.Since(movedAt) > deliveryIdle {
			break
		}
		if !h.sleep(deliveryCheck) {
			return false
		}
	}
	end := time.Unix(0, h.deliveredAt.Load())
	if time.Since(end) >= quietGap {
		// The first change after a quiet time goes out at once.
		return true
	}
	took := end.Sub(b.sentAt)
	factor := time.Duration(paceFactor)
	if b.newcomers >= burstNewcomers {
		factor = burstPaceFactor
	}
	return h.sleep(min(time.Until(b.sentAt.Add(factor*took)), maxPace))
}

// runBroadcaster publishes counts and heartbeats until Close. Every
// signal, Counter change or retry leads to one cycle; signals that arrive
// while a cycle waits or runs are merged into the next one.
func (h *Hub) runBroadcaster() {
	defer h.workers.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-h.stop
		cancel()
	}()

	window := h.cfg.WriteTimeout + h.cfg.WriteTimeout/10 + 100*time.Millisecond
	b := broadcaster{limit: newLimiter(window, time.Now())}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var beats <-chan time.Time // none without a Heartbeat
	if h.cfg.Heartbeat > 0 {
		beat := time.NewTicker(h.cfg.Heartbeat)
		defer beat.Stop()
		beats = beat.C
	}
	changes := h.counter.Changes()
	heartbeat := heartbeatEvent()

	for {
		select {
		case <-h.stop:
			return
		case <-beats:
			// Everyone gets the beat, whatever else is on its way: it is
			// what finds a vanished client. A beat only takes a free
			// token: counts keep a busy stream alive as well.
			if b.limit.tryTake(time.Now()) {
				h.publish(heartbeat, 0)
			}
			continue
		case <-h.dirty:
			b.lastChange = time.Now()
		case <-changes:
			b.lastChange = time.Now()
		case <-retry.C:
		}
		// The first change after a quiet time goes out at once; later ones
		// wait for the coalescing gap and the pace, and are merged.
		if !h.sleep(h.cfg.Coalesce-time.Since(b.lastTime)) || !h.pace(&b) {
			return
		}
		if !h.awaitToken(&b) || !h.sleep(b.limit.take(time.Now())) {
			return
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

// awaitToken waits until the cycle may take a publish token: at once while
// the bucket holds more than the reserve; else until it does, or until no
// change has come for burstOver (the burst has ended, and the reserve
// tells everyone its end at once). It reports false if the hub stopped
// meanwhile. The bucket itself still bounds every window: the reserve
// only decides who may spend its last tokens.
func (h *Hub) awaitToken(b *broadcaster) bool {
	for range 1000 { // a round per change: past 1000 in one wait, the reserve is not held back
		wait := b.limit.untilAbove(time.Now(), reserveTokens)
		quiet := burstOver - time.Since(b.lastChange)
		if wait <= 0 || quiet <= 0 {
			return true
		}
		t := time.NewTimer(max(min(wait, quiet), time.Millisecond))
		select {
		case <-h.stop:
			t.Stop()
			return false
		case <-h.dirty:
			// The cycle reads the latest state: this change is in it.
			b.lastChange = time.Now()
		case <-t.C:
		}
		t.Stop()
	}
	return true
}

// sleep waits d (nothing if d <= 0) and reports false if the hub stopped meanwhile.
func (h *Hub) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-h.stop:
		return false
	case <-t.C:
		return true
	}
}

// cycle reads the local count, stores it in the Counter, learns who came
// online or went offline, and publishes, as one r3labs event, the user
// count and the people count if they changed or a subscriber is waiting
// for its first events (then both: a new stream's first two events), and
// one user event per transition. It returns how soon to run again after a
// failure or for someone leaving, or 0.
func (h *Hub) cycle(ctx context.Context, b *broadcaster) time.Duration {
	h.mu.Lock()
	local := h.registered
	// Newcomers are in local: this cycle's counts are their first events.
	// Those who register after this point are not, and drop them.
	b.waiting = append(b.waiting, h.newcomers...)
	clear(h.newcomers)
	h.newcomers = h.newcomers[:0]
	// Under the same lock: the people told of are those of the streams counted.
	taken := h.presence.take()
	h.mu.Unlock()
	newcomers := len(b.waiting)

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
		// The global count is unknown: a newcomer's first event would not
		// count it, so nobody gets anything until Store works.
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
		pc.people, pc.transitions = b.people, nil
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

	// Everyone already streaming gets what changed: the counts, then one
	// user event per person who came or went. Newcomers get, after that,
	// an event of their own with both counts: their first two events
	// (their from is its first id). Each kind is told apart by the parity
	// of its first id (sharedOnly, newcomersOnly), so neither side gets the
	// other's: nobody is told a count that did not change.
	changed := b.changed[:0]
	if b.started && global != b.global {
		changed = append(changed, countFields(b.nextID(idShared), global, 0))
		h.stats.broadcasts.Add(1)
	}
	if b.started && pc.people != b.people {
		changed = append(changed, peopleFields(b.nextID(startOr(len(changed))), pc.people))
	}
	if b.started && !h.cfg.CountOnly {
		for _, t := range pc.transitions {
			changed = append(changed, userFields(b.nextID(startOr(len(changed))), t, global, pc.people))
			h.stats.announcements.Add(1)
		}
	}
	if b.started && partial != b.partial {
		// Told after the counts it qualifies, so a page never shows a
		// count as exact that was only this instance's best knowledge.
		changed = append(changed, stateFields(b.nextID(startOr(len(changed))), partial))
	}
	var first []eventFields
	if newcomers > 0 || !b.started {
		first = append(b.first[:0],
			countFields(b.nextID(idNewcomers), global, h.cfg.Retry),
			peopleFields(b.nextID(idNext), pc.people))
		if partial {
			first = append(first, stateFields(b.nextID(idNext), true))
		}
		if !b.started || global != b.global {
			h.stats.broadcasts.Add(1)
		}
	}
	b.changed, b.first = changed, first
	defer func() {
		clear(b.changed)
		clear(b.first)
	}()
	if len(changed) == 0 && len(first) == 0 {
		return again
	}
	b.started = true
	b.global, b.people, b.partial = global, pc.people, partial
	h.global.Store(int64(global))
	h.people.Store(int64(pc.people))
	b.reached, b.newcomers, b.sentAt = local, newcomers, time.Now()
	// The event whose writes measure the cycle: the one for everyone, if any.
	if len(changed) > 0 {
		h.measured.Store(idOf(changed[0]))
		h.shared.Store(idOf(changed[0]))
	} else {
		h.measured.Store(idOf(first[0]))
	}
	h.delivered.Store(0)
	if len(changed) > 0 {
		if len(first) > 0 {
			// A second event this cycle: its token is owed, and the next
			// cycle waits for it (the window's bound allows the one over).
			b.limit.take(time.Now())
		}
		if !h.publish(cycleEvent(changed), idOf(changed[0])) {
			b.global, b.people = -1, -1 // lost: the next cycle sends both again
			again = storeRetry
		}
	}
	if len(first) > 0 {
		// Each newcomer's from is set before the event is out, or it could
		// drop its own first event.
		id := idOf(first[0])
		for _, sub := range b.waiting {
			sub.from.Store(id)
		}
		if !h.publish(cycleEvent(first), id) {
			// Lost: they are the next cycle's newcomers again, or they
			// would drop every event until someone else joined.
			for _, sub := range b.waiting {
				sub.from.Store(math.MaxUint64)
			}
			return storeRetry
		}
		clear(b.waiting)
		b.waiting = b.waiting[:0]
	}
	return again
}

// The kinds of id nextID hands out.
const (
	idNext      = iota // the next part of the same r3labs event
	idShared           // the first of an event for everyone streaming: even
	idNewcomers        // the first of newcomers' first events: odd
)

// startOr is idShared for the first part of an event, else idNext.
func startOr(parts int) int {
	if parts == 0 {
		return idShared
	}
	return idNext
}

// nextID hands out the next event id. The first id of an r3labs event
// says who it is for: even for everyone already streaming, odd for
// newcomers only (see subscriber.startEvent); within an event ids simply
// follow. Ids only grow, with a gap where the parity needs one.
func (b *broadcaster) nextID(kind int) uint64 {
	b.seq++
	if (kind == idShared && b.seq%2 == 1) || (kind == idNewcomers && b.seq%2 == 0) {
		b.seq++
	}
	return b.seq
}

// idOf is the id of an event's fields.
func idOf(f eventFields) uint64 {
	id, _ := strconv.ParseUint(f.id, 10, 64)
	return id
}

// newcomersOnly reports whether an r3labs event whose first id is id is
// the first events of newcomers (odd) rather than for everyone (even).
func newcomersOnly(id uint64) bool { return id%2 == 1 }

// publish hands ev, whose first id is id (0 for a heartbeat), to the
// shared stream without waiting. The stream's queue is only full if its
// relay loop is stalled, which the publish rate is there to prevent; the
// event is then counted as skipped.
func (h *Hub) publish(ev *sse.Event, id uint64) bool {
	if id > 0 {
		n := h.published.Add(1)
		h.firstIDs[n%subscriberBuffer].Store(id)
	}
	if h.sse.TryPublish(sharedStream, ev) {
		return true
	}
	h.stats.skipped.Add(1)
	return false
}

// behind reports whether an event whose first id is id is more than
// maxLag events older than the latest published: a subscriber writing it
// now reads too slowly and would in time fill its channel.
func (h *Hub) behind(id uint64) bool {
	n := h.published.Load()
	if n <= maxLag {
		return false
	}
	// The first id maxLag events back; if it was overwritten since, the
	// one there is newer still, and the answer the same.
	return h.firstIDs[(n-maxLag)%subscriberBuffer].Load() > id
}
