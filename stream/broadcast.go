package stream

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/r3labs/sse/v2"
)

// The broadcaster is the only goroutine that publishes into the shared
// r3labs stream. Its events reach every subscriber in one order, so ids
// only grow. r3labs relays each event into every subscriber's 64-slot
// channel and blocks, for everyone, on a full one; so before every publish
// the broadcaster ends each subscriber that has fallen dropDepth events
// behind (dropLagging): a client that stops reading, or reads slower than
// events come, is dropped long before its channel can fill, whatever the
// rate of events. A cycle's events (the counts that changed, then one
// "user" event per person who came or went) travel as one r3labs event
// (see cycleEvent), however many people move.

const (
	// streamQueue is the depth of the shared stream's own queue, in front
	// of r3labs' relay loop: a few events, so few can be on their way to a
	// subscriber from before it joined (see dropLagging).
	streamQueue = 4
	// queueSlack is how many events a subscriber may be sent from before
	// the publish count it was registered at: those queued when r3labs
	// registered it, and the one being published then. (Counted in that
	// publish count and again as it begins them, they put its at up to
	// queueSlack ahead of the events it has really come through.)
	queueSlack = streamQueue + 1
	// dropDepth is how many events a subscriber's channel may hold before
	// the hub ends the subscriber: room is left for the events published
	// while its end takes effect, and for any published in the instant
	// between r3labs registering a subscriber and Hub.register reading
	// the publish count.
	dropDepth = subscriberBuffer - 16
	// stuckWrite is how long a subscriber that far behind must have been
	// inside one write to count as stuck: a write with room in the socket
	// buffer takes microseconds. It is also the longest a client can hold
	// a publish back by reading just fast enough to finish each write in
	// time, so it is short: to hold the broadcaster for longer, a client
	// would have to read 200 events a second, more than ever come.
	stuckWrite = 5 * time.Millisecond
	// catchUpCheck is how often the broadcaster looks again at subscribers
	// that are behind, not stuck, while it waits for them.
	catchUpCheck = time.Millisecond
	// publishWait bounds how long publish waits for room in the shared
	// stream's queue.
	publishWait = 100 * time.Millisecond
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
	// least burstNewcomers registered in one cycle, or waiting to be: a
	// restart's reconnections), when every broadcast also holds up that
	// many registrations.
	burstPaceFactor = 8
	burstNewcomers  = 100
	// burstEnd and burstLinger: within burstLinger of a cycle that found
	// burstNewcomers, subscribers still arrive in bulk while a cycle
	// finds at least burstEnd registered in it or waiting to be. Each
	// telling to everyone holds r3labs' registrations up while it is
	// written, so the cycles after one find fewer newcomers, and read as
	// the end of the arrivals they told everyone again (a 19,000 ramp
	// made a second full fan-out, 100 ms after the first, at each
	// telling). The linger is short, so that a steady trickle of joins
	// after a burst is no burst.
	burstEnd    = burstNewcomers / 10
	burstLinger = time.Second
	// burstTell is how often those already streaming are told the counts
	// while subscribers keep arriving in bulk (cycle): the contract only
	// asks for the true count within a second after the burst, and each
	// telling is a write to everyone (about 400 ms of CPU at 19,000 on a
	// slow 2-core machine: once a second, a fifth of both cores).
	burstTell = 3 * time.Second
	// maxPace bounds the wait, so every subscriber still hears the true
	// count within the contract's second after a burst.
	maxPace = 400 * time.Millisecond
	// settleGap is how long without a join or leave ends a pace's wait:
	// the burst is over (settle).
	settleGap = 50 * time.Millisecond
	// quietGap is how long the fan-out must have been idle for a change to
	// go out unpaced: the count is not "changing all the time".
	quietGap = 200 * time.Millisecond
	// paceFrom is the least broadcast worth pacing: below it a fan-out
	// costs next to nothing.
	paceFrom = 1000
	// departureWait is how long a lone leave whose client hung up waits
	// for another hangup: one client closing its streams one after
	// another (a load generator, a proxy restarting) closes one in tens of
	// microseconds here.
	departureWait = time.Millisecond
	// paceMoves is the least number of joins and leaves since the last
	// cycle that makes a burst worth pacing.
	paceMoves = 2
	// departureGap replaces settleGap while the pace waits for a mass
	// departure: every hangup is seen within microseconds of the client's
	// close, and Hub.departing says how many are still on their way, so
	// once none is, a shorter quiet tells the departure is over. One
	// client closing streams one after another closes one in tens of
	// microseconds; at 10,000 the last 50 ms of quiet were an eighth of
	// an exodus's time here.
	departureGap = 25 * time.Millisecond
)

// broadcaster is the state of the broadcaster goroutine, touched by no other.
type broadcaster struct {
	seq     uint64 // the last event id handed out; ids only grow, whatever the event
	started bool   // the first counts are out
	global  int    // the user count last told everyone streaming
	people  int    // the people count last told everyone streaming
	// lastGlobal is the user count last published to anyone (everyone
	// streaming, or newcomers only): what Stats.Broadcasts counts.
	lastGlobal int
	partial    bool // the counts published are this instance's best knowledge
	failing    bool // the last Store failed (log once per outage)
	// peopleFailing: the last Roster call failed (log once per outage)
	peopleFailing bool
	lastTime      time.Time // when the latest cycle started
	// sentAt and reached are when the latest cycle's event went out and
	// to how many subscribers (those registered then); bulk is set if
	// subscribers were arriving in bulk then (see inBulk).
	sentAt  time.Time
	reached int
	bulk    bool
	// bulkAt is when a cycle last found burstNewcomers arriving.
	bulkAt time.Time
	// leavingAt is when the cycles began to find burstNewcomers leaving
	// (Hub.departing), zero while they do not.
	leavingAt time.Time
	// moves is Hub.moves as the latest cycle read it; remote is set when a
	// Counter change (another instance's streams) is pending: pace treats
	// it as a burst, since its size is unknown here.
	moves  uint64
	remote bool
	// hungUp is Hub.hungUp as the latest cycle read it.
	hungUp uint64
	// toldAt is when an event for everyone streaming last went out.
	toldAt time.Time
	// checkAt is the least publish count at which a subscriber could be
	// dropDepth behind, as of the last look (dropLagging).
	checkAt uint64
	lagging []*subscriber // dropLagging's, kept for its next call
	// waiting are newcomers counted in but not yet sent their first
	// events; changed and first are the current cycle's events.
	waiting []*subscriber
	changed []eventFields
	first   []eventFields
}

// dropLagging makes sure, before the next event is published, that no
// subscriber's r3labs channel could then hold dropDepth events: a
// subscriber that far behind and stuck in a write (for stuckWrite) is
// ended; one that far behind but not in a write has simply not been
// given the CPU yet (a burst of events outran its goroutine), and the
// broadcaster waits for it to catch up, at most WriteTimeout, the bound a
// stuck write has anyway. It reports false if the hub stopped meanwhile.
//
// A subscriber's at is the publish count when it was registered (read by
// Hub.register, right after r3labs took it in) plus every event it has
// begun to write (subscriber.startEvent); what it has been sent and not
// begun is at most the events published since, plus queueSlack. Its
// end makes a blocked write fail at once, and from then on r3labs' loop
// drains its channel without writing until the relay loop takes it out,
// so the channel never fills and the relay never blocks on it.
//
// A subscriber that keeps up is within a few events of the head, so the
// look at everyone is only taken once the slowest seen last time could
// have fallen behind: a pass over the subscribers every few dozen events
// at most, not one per publish.
func (h *Hub) dropLagging(b *broadcaster) bool {
	next := h.published.Load() + 1
	if next < b.checkAt {
		return true
	}
	// Added, not subtracted: at may run a few ahead of next (the events
	// queued when it was registered are counted twice, see queueSlack).
	behind := func(sub *subscriber) bool { return next+queueSlack >= dropDepth+sub.at.Load() }
	least := next
	lagging := b.lagging[:0]
	h.mu.Lock()
	for sub := range h.subs {
		switch {
		case !sub.registered || sub.ending.Load():
		case behind(sub):
			lagging = append(lagging, sub)
		default:
			least = min(least, sub.at.Load())
		}
	}
	h.mu.Unlock()
	defer func() {
		clear(lagging)
		b.lagging = lagging[:0]
	}()
	for start := time.Now(); len(lagging) > 0; {
		h.mu.Lock()
		now, waiting := time.Now(), lagging[:0]
		for _, sub := range lagging {
			_, here := h.subs[sub]
			switch {
			case !here || sub.ending.Load():
			case !behind(sub):
				least = min(least, sub.at.Load())
			case sub.stuck(now) || now.Sub(start) >= h.cfg.WriteTimeout:
				sub.end()
				h.stats.droppedBehind.Add(1)
			default:
				waiting = append(waiting, sub)
			}
		}
		h.mu.Unlock()
		clear(lagging[len(waiting):])
		lagging = waiting
		if len(lagging) > 0 && !h.sleep(catchUpCheck) {
			return false
		}
	}
	b.checkAt = least + dropDepth - queueSlack
	return true
}

// pace waits, after the latest broadcast, until the fan-out has been idle
// for paceFactor-1 times as long as that broadcast took to reach everyone
// (as measured by the subscribers' flushes of its event; scaled
// down to the subscribers still here, for the next one), so that
// while the count keeps changing (a ramp of joins, a mass leave) the
// fan-out takes at most a quarter of the time and the rest goes to
// accepting and closing connections. The cost of a broadcast is measured,
// never assumed: it grows with the subscribers and with whatever else the
// machine is doing. A lone change (one join or leave here since the last
// cycle) goes out as soon as the latest broadcast is out: it is not a
// burst, and holding it back would only make it late; but published while
// that broadcast is still being written it would only queue behind it in
// every subscriber's channel, and be one more fan-out where the changes
// that come meanwhile could have gone with it (at the end of a churn of
// 19,000, three lone leaves 100 ms apart stacked three fan-outs of 330 ms
// each in front of the final count, told 1.2 s after the last leave). A
// change after quietGap of idle fan-out goes out at once. Subscribers
// that do not write it (stuck, or gone) delay nobody: the delivery counts
// as over once no flush has come for deliveryIdle. It reports false if
// the hub stopped meanwhile.
//
// Streams whose clients have hung up and that are not yet counted out
// (Hub.departing) count as changes to come too, and while there are any,
// or more than one client has hung up since the latest cycle, the cycle
// waits for them (settle, at most maxPace): in a mass departure
// a count told on the way down goes mostly to streams about to leave. A
// leave whose client hung up is lone only if no other hangup follows
// within departureWait: the first close of a mass departure comes alone.
//
// Streams admitted and not yet registered count as changes to come: a
// join with hundreds more waiting for r3labs' relay loop to take them in
// is no lone change. Unpaced, each such join's broadcast kept the relay
// loop busy, so it took in the next few streams only, whose joins were
// "lone" again: a 19,000-stream ramp crawled at a few joins per
// broadcast, one full fan-out each.
func (h *Hub) pace(b *broadcaster) bool {
	if h.cfg.Coalesce == 0 || b.reached < paceFrom {
		return true
	}
	// The delivery's last move: a delivery that stalled long ago (someone
	// left or is stuck before writing it) holds nothing up.
	seen, movedAt := h.delivered.Load(), time.Unix(0, h.deliveredAt.Load())
	if movedAt.Before(b.sentAt) {
		movedAt = b.sentAt
	}
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
	lone := !b.remote && h.changes(b) < paceMoves
	if lone && h.hungUp.Load() != b.hungUp {
		// A client hung up. The first of a mass departure looks like a
		// lone leave until the next hangup comes, a moment later.
		if !h.sleep(departureWait) {
			return false
		}
		lone = h.changes(b) < paceMoves
	}
	if lone {
		return true // a lone change, and still one
	}
	end := time.Unix(0, h.deliveredAt.Load())
	if h.departing.Load() > 0 || h.hungUp.Load()-b.hungUp >= paceMoves {
		// Clients are hanging up (some on their way out, or more than one
		// since the latest cycle): whatever went out now would go mostly
		// to streams about to leave (a mass departure). It waits for them.
		return h.settle(maxPace, departureGap, b.remote)
	}
	if time.Since(end) >= quietGap {
		// The first change after a quiet time goes out at once.
		return true
	}
	// The next broadcast costs what the last did per subscriber, for
	// those here now: after a mass leave, far less.
	took := end.Sub(b.sentAt)
	if now := h.stats.subscribers.Load(); now < int64(b.reached) {
		took = took * time.Duration(now) / time.Duration(b.reached)
	}
	factor := time.Duration(paceFactor)
	if b.bulk {
		factor = burstPaceFactor
	}
	return h.settle(min(time.Until(end.Add((factor-1)*took)), maxPace), settleGap, b.remote)
}

// changes is how many joins and leaves the next cycle takes in or has on
// their way: those since the latest cycle, the streams waiting to be
// registered, and those whose clients have hung up (Hub.departing).
func (h *Hub) changes(b *broadcaster) uint64 {
	return h.moves.Load() - b.moves + uint64(h.arriving()) + uint64(h.departing.Load())
}

// settle waits d, or less once no stream has joined or left here for
// quiet and none waits to be registered or counted out (unless remote, a
// change of another instance's, is pending: its end is not seen here): the burst
// the pace made room for has ended, and its end is told at once instead
// of a pace later. Streams waiting to be registered, not registrations
// alone, tell a ramp going on: registrations stall while r3labs' relay
// loop is busy with a fan-out. It reports false if the hub stopped
// meanwhile.
func (h *Hub) settle(d, quiet time.Duration, remote bool) bool {
	until := time.Now().Add(d)
	moves, movedAt := h.moves.Load(), time.Now()
	for {
		left := time.Until(until)
		if left <= 0 {
			return true
		}
		if !h.sleep(min(left, deliveryCheck)) {
			return false
		}
		if n := h.moves.Load(); n != moves || h.arriving() > 0 || h.departing.Load() > 0 {
			moves, movedAt = n, time.Now()
		} else if !remote && time.Since(movedAt) >= quiet {
			return true
		}
	}
}

// arriving is how many streams are admitted and not yet registered:
// waiting for r3labs to take them in.
func (h *Hub) arriving() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) - h.registered
}

// delivery counts one subscriber done with the measured event. The clock
// is read by the last of them and every 64th, not by each: the time is
// needed to within a fraction of a fan-out.
func (h *Hub) delivery() {
	if n := h.delivered.Add(1); n == h.deliverTo.Load() || n%64 == 0 {
		h.deliveredAt.Store(time.Now().UnixNano())
	}
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

	var b broadcaster
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
			// what finds a vanished client. (A subscriber that has an
			// event for everyone right behind it writes that instead, see
			// beatFollowed: the event finds a vanished client as well.)
			if !h.dropLagging(&b) {
				return
			}
			h.beatAt.Store(h.published.Load() + 1) // the count publish gives it
			h.publish(heartbeat)
			continue
		case <-h.dirty:
		case <-changes:
			b.remote = true
		case <-retry.C:
		}
		// The first change after a quiet time goes out at once; later ones
		// wait for the coalescing gap and the pace, and are merged.
		if !h.sleep(h.cfg.Coalesce-time.Since(b.lastTime)) || !h.pace(&b) {
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
	arriving := len(h.subs) - local // waiting to be registered (Hub.arriving)
	departing := int(h.departing.Load())
	b.moves, b.hungUp, b.remote = h.moves.Load(), h.hungUp.Load(), false
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
	// events of their own with both counts: their first two events
	// (their from is the first one's id), in the same r3labs event
	// (withNewcomers) or alone. The part for newcomers is told apart by
	// the parity of its first id (newcomersOnly), so neither side gets
	// the other's: nobody is told a count that did not change.
	changed := b.changed[:0]
	// While subscribers arrive in bulk, those already streaming are told
	// the new counts at most every burstTell (intermediate values may be
	// skipped): each telling is a write to every one of them, and during
	// a restart's reconnections that was most of the fan-out, competing
	// with accepting the newcomers, who still get their own counts at
	// once. A cycle that announces someone or changes the count's state
	// tells everyone as usual, and so does the first cycle that no longer
	// finds arrivals in bulk (inBulk): one is scheduled settleGap later,
	// so the counts held back are told as soon as the arrivals stop.
	// Bulk counts the streams still waiting to be registered: while a
	// broadcast to everyone keeps r3labs' relay loop and the processors
	// busy, a cycle takes in a few of the hundreds waiting, and were those
	// few told to everyone, the next cycle would take in a few again (a
	// 19,000 ramp spent seconds at 1-5 newcomers a cycle, each cycle a
	// fan-out to 15,500, with 200 streams waiting).
	bulk, hold := b.holds(newcomers, arriving, departing, len(pc.transitions), partial, time.Now())
	if hold && (global != b.global || pc.people != b.people) && (again == 0 || settleGap < again) {
		again = settleGap
	}
	if !hold && b.started && global != b.global {
		changed = append(changed, countFields(b.nextID(idShared), global, 0))
	}
	if !hold && b.started && pc.people != b.people {
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
	}
	b.changed, b.first = changed, first
	defer func() {
		clear(b.changed)
		clear(b.first)
	}()
	if len(changed) == 0 && len(first) == 0 {
		return again
	}
	if !b.started || global != b.lastGlobal {
		h.stats.broadcasts.Add(1) // a new value, to everyone or to newcomers
	}
	b.lastGlobal = global
	b.remember(hold, len(first) > 0, global, pc.people, partial)
	if len(changed) > 0 {
		b.toldAt = time.Now()
	}
	b.started = true
	h.global.Store(int64(global))
	h.people.Store(int64(pc.people))
	b.reached, b.bulk, b.sentAt = local, bulk, time.Now()
	// One r3labs event carries the cycle (see withNewcomers): its
	// flushes, which every subscriber registered now makes, measure it.
	var ev *sse.Event
	switch {
	case len(first) == 0:
		ev = cycleEvent(changed)
	case len(changed) == 0:
		ev = cycleEvent(first)
	default:
		ev = withNewcomers(cycleEvent(changed), first)
	}
	if len(changed) > 0 {
		h.shared.Store(changed[0].id)
		h.measured.Store(changed[0].id)
	} else {
		h.measured.Store(first[0].id)
	}
	h.delivered.Store(0)
	h.deliverTo.Store(int64(local))
	// Each newcomer's from is set before the event is out, or it could
	// drop its own first events.
	if len(first) > 0 {
		id := first[0].id
		for _, sub := range b.waiting {
			sub.from.Store(id)
		}
	}
	if !h.dropLagging(b) {
		return again
	}
	if !h.publish(ev) {
		if len(changed) > 0 {
			b.global, b.people = -1, -1 // lost: the next cycle sends both again
		}
		// The newcomers are the next cycle's newcomers again, or they
		// would drop every event until someone else joined.
		for _, sub := range b.waiting {
			sub.from.Store(math.MaxUint64)
		}
		return storeRetry
	}
	if len(changed) > 0 {
		h.sharedAt.Store(h.published.Load())
	}
	clear(b.waiting)
	b.waiting = b.waiting[:0]
	return again
}

// beatFollowed reports whether an event for everyone streaming has been
// published since the latest heartbeat. A subscriber about to write a
// heartbeat then has that event right behind it in its r3labs channel,
// and drops the beat: the event keeps the stream alive as well, a moment
// later, and a heartbeat older than the latest has it behind too. At
// 19,000 streams a heartbeat's fan-out takes as long as a count's; a
// change that came while it went out waited behind it in every channel,
// and made the slowest rounds of the load test's fan-out.
func (h *Hub) beatFollowed() bool { return h.sharedAt.Load() > h.beatAt.Load() }

// holds reports whether subscribers arrive in bulk (inBulk), at now, and
// whether this cycle then holds the new counts back from those already
// streaming: it announces nobody (transitions is how many people came or
// went), the counts' state stays as told, and everyone was told less
// than burstTell ago, while subscribers arrive in bulk or at least
// burstNewcomers are leaving (departing: their clients have hung up). A
// mass departure counts from its first such cycle, not from the last
// telling, which may be long past: told during it, a count goes mostly
// to streams about to leave, and is stale by the time it is written.
func (b *broadcaster) holds(newcomers, arriving, departing, transitions int, partial bool, now time.Time) (bulk, hold bool) {
	bulk = b.inBulk(newcomers, arriving, now)
	switch {
	case departing < burstNewcomers:
		b.leavingAt = time.Time{}
	case b.leavingAt.IsZero():
		b.leavingAt = now
	}
	told := b.toldAt
	if b.leavingAt.After(told) {
		told = b.leavingAt
	}
	return bulk, b.started && (bulk || departing >= burstNewcomers) && now.Sub(told) < burstTell &&
		transitions == 0 && partial == b.partial
}

// remember records what a cycle about to publish tells everyone
// streaming: the counts, unless it holds them back (hold). A held cycle
// that tells its newcomers (toldNewcomers) counts those already streaming
// are not told: until a cycle tells everyone, no one value is what
// everyone holds, so it forgets the value, and that cycle tells it even if
// it is back at what was told before the hold. (Left at that value, a mass
// reconnect, 1,000 leaving and 680 of them back in one cycle, the other
// 320 in the next, left the 680 at 680 for good.)
func (b *broadcaster) remember(hold, toldNewcomers bool, global, people int, partial bool) {
	switch {
	case !hold:
		b.global, b.people, b.partial = global, people, partial
	case toldNewcomers:
		if global != b.global {
			b.global = -1
		}
		if people != b.people {
			b.people = -1
		}
	}
}

// inBulk reports whether subscribers arrive in bulk, from a cycle's
// newcomers and the streams still waiting to be registered at now: at
// least burstNewcomers of either, or burstEnd of both within burstLinger
// of the last cycle that found that many.
func (b *broadcaster) inBulk(newcomers, arriving int, now time.Time) bool {
	if newcomers >= burstNewcomers || arriving >= burstNewcomers {
		b.bulkAt = now
		return true
	}
	return newcomers+arriving >= burstEnd && now.Sub(b.bulkAt) < burstLinger
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

// newcomersOnly reports whether an r3labs event whose first id is id is
// the first events of newcomers (odd) rather than for everyone (even).
func newcomersOnly(id uint64) bool { return id%2 == 1 }

// publish hands ev to the shared stream and counts it in published (see
// dropLagging). The stream's queue is full only while its relay loop is
// still handing out streamQueue earlier events; publish then tries again
// every catchUpCheck for up to publishWait, and past that (the relay
// stalled) counts the event as skipped: a count is published again later.
func (h *Hub) publish(ev *sse.Event) bool {
	h.published.Add(1)
	for range publishWait / catchUpCheck {
		if h.sse.TryPublish(sharedStream, ev) {
			return true
		}
		if !h.sleep(catchUpCheck) {
			break
		}
	}
	h.published.Add(^uint64(0)) // not published after all
	h.stats.skipped.Add(1)
	return false
}
