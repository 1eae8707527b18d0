package stream

import "context"

// Person is who holds a stream: a GitHub account (ID, GitHub's numeric id
// as a string) and the public profile the session carries. A person with
// several tabs, or on several instances, is one person with several streams.
type Person struct {
	ID        string
	Login     string
	Name      string
	AvatarURL string
}

// PersonStreams is a person and how many streams they hold.
type PersonStreams struct {
	Person
	// Streams is the number of streams: on this instance when the hub tells
	// a Roster, on every instance when a Roster answers.
	Streams int
	// Since orders people by when they came online: a smaller value came
	// first. A Roster sets it; the hub numbers people itself without one.
	Since int64
}

// Roster is where per-person stream counts live when several instances
// share them. A Counter that also implements Roster makes the people count
// and the online set global; without one, this instance's people are
// everyone. The hub's broadcaster is the only caller, once per cycle, right
// after Counter.Store.
type Roster interface {
	// StorePeople records this instance's stream count of every person in
	// changed (Streams 0: none left here); with all set, changed is every
	// person this instance holds and the roster forgets any other it had
	// from this instance. since is the Version of the previous answer (0 at
	// first). The answer holds every person whose global count changed
	// after since, with their profile while they hold streams, or, with
	// Full set, everyone online.
	StorePeople(ctx context.Context, changed []PersonStreams, all bool, since uint64) (PeopleChanges, error)
}

// PeopleChanges is a Roster's answer to StorePeople.
type PeopleChanges struct {
	// Version names the roster's state; the next call passes it as since.
	Version uint64
	// Full means People is everyone online: anyone else is offline.
	Full bool
	// People holds the global stream counts (0: offline) that changed.
	People []PersonStreams
	// Resend means the roster lost this instance's share (it was taken for
	// dead): nothing was recorded, and the hub calls again with all set.
	Resend bool
}

// Limiter holds the per-user stream limit across every instance. A
// Counter that also implements Limiter is asked before the hub accepts a
// stream (with Config.MaxStreamsPerUser set), and told when it ends.
type Limiter interface {
	// Acquire reserves one more stream for p unless p already holds max
	// on every instance together, atomically, and then returns
	// ErrUserLimit. Any other error means the limiter could not tell (its
	// back end is down): the hub then holds to its own, local, limit.
	// Either way but ErrUserLimit, Release must follow.
	Acquire(ctx context.Context, p Person, max int) error
	// Release gives back a stream of p that Acquire let in.
	Release(p Person)
}
