package stream

import (
	"math"
	"sort"

	"github.com/r3labs/sse/v2"
)

// eventLog holds, in id order, the latest event of each kind that a
// subscriber may still need: the user count, the people count and one
// user event per person. A subscriber is at a cursor (the id of the last
// log event it accounted for) and is owed every live event after it, so a
// subscriber that fell behind gets only what still matters, oldest first,
// and never an older state of anything than it already has.
//
// Only the broadcaster goroutine touches it.
type eventLog struct {
	entries []*logEntry          // by id; superseded ones are dead until compacted
	byKey   map[string]*logEntry // the live entry of each key
	dead    int
}

// logEntry is one event of the log.
type logEntry struct {
	id  uint64
	key string // "count", "people" or "user:<person id>"
	ev  *sse.Event
	// who is the transition a user event tells of, to make it again with
	// newer counts; nil for the counts.
	who *transition
	// departure marks a user event saying someone went offline: once every
	// subscriber has it, nobody needs it and it leaves the log.
	departure bool
	dead      bool
}

// add appends e, whose id is greater than any in the log, and retires the
// entry it supersedes.
func (l *eventLog) add(e *logEntry) {
	if l.byKey == nil {
		l.byKey = make(map[string]*logEntry)
	}
	if old := l.byKey[e.key]; old != nil {
		old.dead = true
		l.dead++
	}
	l.byKey[e.key] = e
	l.entries = append(l.entries, e)
}

// head is the id of the newest entry, or 0.
func (l *eventLog) head() uint64 {
	if len(l.entries) == 0 {
		return 0
	}
	return l.entries[len(l.entries)-1].id
}

// firstAfter is the id of the first live entry after cursor, or the
// greatest id there is when there is none.
func (l *eventLog) firstAfter(cursor uint64) uint64 {
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].id > cursor })
	for ; i < len(l.entries); i++ {
		if !l.entries[i].dead {
			return l.entries[i].id
		}
	}
	return math.MaxUint64
}

// after appends to out up to limit live entries with ids above cursor, in
// order, and reports whether more remain.
func (l *eventLog) after(cursor uint64, limit int, out []*logEntry) ([]*logEntry, bool) {
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].id > cursor })
	for ; i < len(l.entries); i++ {
		e := l.entries[i]
		if e.dead {
			continue
		}
		if limit == 0 {
			return out, true
		}
		out = append(out, e)
		limit--
	}
	return out, false
}

// prune retires departures every subscriber has (ids up to cursor) and
// compacts the log once most of it is dead, so it holds about one entry
// per person online.
func (l *eventLog) prune(cursor uint64) {
	for _, e := range l.entries {
		if e.id > cursor {
			break
		}
		if e.departure && !e.dead {
			e.dead = true
			l.dead++
			delete(l.byKey, e.key)
		}
	}
	if l.dead < 64 || l.dead*2 < len(l.entries) {
		return
	}
	live := l.entries[:0]
	for _, e := range l.entries {
		if !e.dead {
			live = append(live, e)
		}
	}
	clear(l.entries[len(live):])
	l.entries, l.dead = live, 0
}
