package stream

import "errors"

// Errors returned by Hub.Serve when it refuses a stream. Nothing has been
// written to the response then: the HTTP layer (handlers/events.go) is the
// one place that turns each into a status.
var (
	// ErrClosed means the hub is shutting down or shut down.
	ErrClosed = errors.New("stream: hub is closed")
	// ErrInstanceLimit means this instance already holds Config.MaxStreams streams.
	ErrInstanceLimit = errors.New("stream: too many streams on this instance")
	// ErrUserLimit means the user already holds Config.MaxStreamsPerUser streams.
	ErrUserLimit = errors.New("stream: too many streams for this user")
)

// errRosterResend means a Roster asked for this instance's whole share
// twice in a row; the cycle is tried again later.
var errRosterResend = errors.New("stream: the roster keeps asking for every local person")

// ErrPartial is wrapped by the error of a Counter's Store when the shared
// count cannot be kept (its back end is unreachable or refuses writes) and
// the count it returns is only this instance's best knowledge. The hub
// still sends that count, so a new stream is never left without one.
var ErrPartial = errors.New("stream: the count is partial")
