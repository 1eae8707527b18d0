package stream

import "context"

// Lifetime is what a caller of Serve may hand the hub, in the request's
// context (WithLifetime), so that Serve returns as soon as the hub has
// taken an HTTP/1.1 connection over, and the request, its handler's stack
// and net/http's buffers can go: what else ends the stream, and what to
// run once it has ended. Without one, Serve returns when the stream ends.
type Lifetime struct {
	// Until ends the stream when it is done (a revoked session); nil: only
	// the client, a failed write or the hub end it.
	Until context.Context
	// Ended runs once, when an admitted stream has ended, however it was
	// served. A stream Serve refuses never runs it: the caller cleans up.
	Ended func()
	// TakenOver, if set, runs on Serve's goroutine when the hub has taken
	// the connection over, before the stream can end (so before Ended):
	// from then on the stream's end, not the handler's return, is the
	// request's end.
	TakenOver func()
}

// lifetimeKey is where WithLifetime keeps a Lifetime.
type lifetimeKey struct{}

// WithLifetime returns ctx carrying lt, for the request handed to Serve.
func WithLifetime(ctx context.Context, lt Lifetime) context.Context {
	return context.WithValue(ctx, lifetimeKey{}, lt)
}

// lifetimeOf returns the Lifetime in ctx, if there is one.
func lifetimeOf(ctx context.Context) (Lifetime, bool) {
	lt, ok := ctx.Value(lifetimeKey{}).(Lifetime)
	return lt, ok
}
