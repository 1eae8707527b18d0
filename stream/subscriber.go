package stream

import "context"

// subscriber is one open stream: one GET /events response.
type subscriber struct {
	id     uint64 // join order; also names the r3labs stream
	stream string // the r3labs stream id, "s<id>"
	person Person
	cancel context.CancelFunc // ends the stream's request context
	w      *responseWriter
	// reserved: the Limiter let this stream in and must be told it ended.
	// Only the stream's own goroutine touches it.
	reserved bool

	// registered is set, under Hub.mu, once r3labs has registered the
	// subscriber with its stream, so published events reach it.
	registered bool

	// sent is the id of the last event handed to the stream (0: none yet),
	// cursor the id of the last event log entry it accounted for. Only
	// the broadcaster goroutine touches them.
	sent   uint64
	cursor uint64
}

// end stops the stream from outside its goroutine: the request context is
// cancelled (r3labs deregisters the subscriber and ServeHTTP returns) and a
// write blocked on a client that does not read fails at once.
func (s *subscriber) end() {
	s.w.end()
	s.cancel()
}
