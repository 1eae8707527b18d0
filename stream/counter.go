package stream

import "context"

// Counter is where the count lives. The Hub tells it how many subscribers
// this instance holds and broadcasts the global count it answers. Memory
// serves one instance; stream/redis shares the count between instances,
// and the program's start-up (cmd/headcount) picks one.
//
// A Counter that can lose its back end may also have a method
// Ping(context.Context) error; Hub.Ready reports its error, so readiness
// follows the back end.
type Counter interface {
	// Store records how many subscribers this instance holds and returns the global count.
	Store(ctx context.Context, local int) (global int, err error)
	// Changes signals when the global count may have changed elsewhere (nil channel if never).
	Changes() <-chan struct{}
}

// Memory is the Counter of a single instance: the global count is the local one.
type Memory struct{}

// Store returns local: with one instance there is nobody else to count.
func (Memory) Store(_ context.Context, local int) (int, error) { return local, nil }

// Changes returns nil, because nothing but this instance changes the count.
func (Memory) Changes() <-chan struct{} { return nil }
