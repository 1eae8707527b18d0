package stream

import "sync/atomic"

// Stats is a snapshot of the hub's numbers, for metrics and tests.
type Stats struct {
	// Subscribers is how many streams this instance holds now.
	Subscribers int64
	// Global is the count subscribers were last told (see Hub.Count).
	Global int64
	// People is the people count subscribers were last told (see Hub.People).
	People int64
	// Announcements counts "user" events made (each sent to every subscriber).
	Announcements uint64
	// Opened is how many streams were accepted since start.
	Opened uint64
	// Closed is how many accepted streams have ended since start.
	Closed uint64
	// RefusedUserLimit counts streams refused with ErrUserLimit.
	RefusedUserLimit uint64
	// RefusedInstanceLimit counts streams refused with ErrInstanceLimit.
	RefusedInstanceLimit uint64
	// RefusedClosed counts streams refused with ErrClosed.
	RefusedClosed uint64
	// Broadcasts counts the values of the global count published: each
	// new value once, whoever it went to (everyone streaming, or
	// newcomers only) and however many events carried it.
	Broadcasts uint64
	// EventsSent counts events (counts and heartbeats) written and flushed
	// to a connection without error: handed to the kernel, not necessarily
	// read by the client.
	EventsSent uint64
	// HeartbeatFailures counts heartbeat comments whose write or flush failed.
	HeartbeatFailures uint64
	// Skipped counts events the shared stream refused because its queue
	// stayed full for publishWait (its relay loop stalled). A refused
	// count is published again.
	Skipped uint64
	// DroppedBehind counts streams ended because they fell too many
	// events behind: a client that stopped reading, or reads slower than
	// the events come.
	DroppedBehind uint64
	// Partial is true while the Counter can only give this instance's best
	// knowledge of the global count (its shared back end is unavailable).
	Partial bool
}

// liveStats holds the atomically updated numbers behind Stats, but for
// Global and People, which are the hub's own state (Hub.global, Hub.people).
type liveStats struct {
	subscribers          atomic.Int64
	announcements        atomic.Uint64
	opened               atomic.Uint64
	closed               atomic.Uint64
	refusedUserLimit     atomic.Uint64
	refusedInstanceLimit atomic.Uint64
	refusedClosed        atomic.Uint64
	broadcasts           atomic.Uint64
	eventsSent           atomic.Uint64
	heartbeatFailures    atomic.Uint64
	skipped              atomic.Uint64
	droppedBehind        atomic.Uint64
	partial              atomic.Bool
}

// snapshot returns the numbers now, with the hub's own global and
// people counts as Stats.Global and Stats.People.
func (c *liveStats) snapshot(global, people int64) Stats {
	return Stats{
		Subscribers:          c.subscribers.Load(),
		Global:               global,
		People:               people,
		Announcements:        c.announcements.Load(),
		Opened:               c.opened.Load(),
		Closed:               c.closed.Load(),
		RefusedUserLimit:     c.refusedUserLimit.Load(),
		RefusedInstanceLimit: c.refusedInstanceLimit.Load(),
		RefusedClosed:        c.refusedClosed.Load(),
		Broadcasts:           c.broadcasts.Load(),
		EventsSent:           c.eventsSent.Load(),
		HeartbeatFailures:    c.heartbeatFailures.Load(),
		Skipped:              c.skipped.Load(),
		DroppedBehind:        c.droppedBehind.Load(),
		Partial:              c.partial.Load(),
	}
}
