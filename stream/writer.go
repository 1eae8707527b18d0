package stream

import (
	"errors"
	"net/http"
	"sync/atomic"
	"time"
)

// responseWriter is what r3labs/sse writes a subscriber's events to. It
// bounds every write with a deadline, so a client that stops reading fails
// its write instead of holding the stream (and the count) forever; it
// counts written events and failed heartbeats; and it reports the moment
// r3labs has registered the subscriber, so events reach it.
//
// All methods but end run on the goroutine serving the stream.
type responseWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	stats   *liveStats
	// onRegistered runs once, when r3labs has registered the subscriber.
	onRegistered func()

	// ending is set by end: from then on every deadline is in the past, so
	// a write blocked on a stuck client returns at once.
	ending atomic.Bool
	// pending counts events handed to the stream and not yet flushed; the
	// hub raises it before publishing, Flush lowers it.
	pending atomic.Int64
	// owed is set while the broadcaster holds back a count because an
	// earlier event is pending; the Flush that empties pending then calls
	// onIdle so the broadcaster sends the latest count.
	owed   atomic.Bool
	onIdle func()

	// noDeadlines is set once the connection turns out not to support
	// deadlines (a test recorder, a wrapper without Unwrap), so the
	// writer stops asking.
	noDeadlines bool
	// armedAt is when the current write deadline was set.
	armedAt time.Time
	// idleDisarm is set for HTTP/2 streams, whose write deadline is a
	// timer that resets the stream when it fires, writing or not: over
	// HTTP/1.1 a deadline that passes while nothing is written does
	// nothing. So an HTTP/2 stream drops its deadline whenever it has
	// nothing left to write, or every stream quieter than WriteTimeout
	// (the default heartbeat is longer) would be cut.
	idleDisarm bool

	// State of the event being written, reset by each Flush.
	writing   bool // a Write happened since the last Flush
	heartbeat bool // the event is a comment (its first write starts with ':')
	failed    bool // a write of the event failed
}

// newResponseWriter wraps w; onRegistered runs once the subscriber can
// receive events, onIdle when an owed count can be sent.
func newResponseWriter(w http.ResponseWriter, r *http.Request, timeout time.Duration, stats *liveStats, onRegistered, onIdle func()) *responseWriter {
	return &responseWriter{
		idleDisarm:     r.ProtoMajor >= 2,
		ResponseWriter: w,
		rc:             http.NewResponseController(errorReporting(w)),
		timeout:        timeout,
		stats:          stats,
		onRegistered:   onRegistered,
		onIdle:         onIdle,
	}
}

// errorReporting returns the writer under w that reports flush errors.
// Middleware writers such as Echo's Response implement Flush without
// FlushError and drop the error, which would hide every failed write from
// the stream (and from its metrics); the writer they wrap, net/http's own,
// reports it. Writes still go through w, so its bookkeeping stays right.
func errorReporting(w http.ResponseWriter) http.ResponseWriter {
	for inner := w; ; {
		if _, ok := inner.(interface{ FlushError() error }); ok {
			return inner
		}
		u, ok := inner.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		inner = u.Unwrap()
	}
}

// WriteHeader passes the status on. r3labs registers the subscriber with
// its stream's run goroutine before it calls WriteHeader(200), so from this
// moment events published to the stream reach this subscriber.
func (w *responseWriter) WriteHeader(code int) {
	w.ResponseWriter.WriteHeader(code)
	if code == http.StatusOK && w.onRegistered != nil {
		w.onRegistered()
		w.onRegistered = nil
	}
}

// Write writes part of an event; the first part after a Flush arms the deadline.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.writing {
		w.writing = true
		w.heartbeat = len(p) > 0 && p[0] == ':'
		w.failed = false
		w.armDeadline()
	}
	n, err := w.ResponseWriter.Write(p)
	if err != nil {
		w.fail()
	}
	return n, err
}

// Flush sends the event to the connection within the deadline.
func (w *responseWriter) Flush() {
	w.armDeadline()
	err := w.rc.Flush()
	switch {
	case err != nil:
		w.fail()
	case w.writing && !w.failed:
		w.stats.eventsSent.Add(1)
	}
	// r3labs writes each event it receives, then flushes it once.
	idle := !w.writing || w.pending.Add(-1) == 0
	if w.writing && idle && w.owed.Load() {
		w.onIdle()
	}
	w.writing = false
	if idle && w.idleDisarm && err == nil && !w.ending.Load() {
		w.clearDeadline()
	}
}

// Unwrap lets http.ResponseController reach the connection underneath.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// fail records a failed write or flush of the current event, once.
func (w *responseWriter) fail() {
	if w.failed {
		return
	}
	w.failed = true
	if w.writing && w.heartbeat {
		w.stats.heartbeatFailures.Add(1)
	}
}

// armDeadline gives the next write between WriteTimeout/2 and WriteTimeout
// to finish, or no time at all once the stream is ending. A deadline set
// less than WriteTimeout/2 ago is kept: moving it for every event of a
// broadcast cost about a tenth of the server's fan-out time, and a stuck
// client is still dropped within WriteTimeout. Setting the deadline before
// checking ending (while end sets ending before its own deadline) means
// end's past deadline always wins the race.
func (w *responseWriter) armDeadline() {
	now := time.Now()
	if now.Sub(w.armedAt) < w.timeout/2 {
		return
	}
	w.armedAt = now
	w.setDeadline(now.Add(w.timeout))
	if w.ending.Load() {
		w.setDeadline(time.Now())
	}
}

// clearDeadline removes any deadline the server set for ordinary pages
// (http.Server.WriteTimeout); the stream's writes arm their own.
func (w *responseWriter) clearDeadline() {
	w.armedAt = time.Time{}
	w.setDeadline(time.Time{})
}

func (w *responseWriter) setDeadline(t time.Time) {
	if w.noDeadlines {
		return
	}
	if err := w.rc.SetWriteDeadline(t); errors.Is(err, http.ErrNotSupported) {
		w.noDeadlines = true
	}
}

// end makes writes fail at once, including one blocked right now. It is
// safe to call from any goroutine while the stream is being served.
func (w *responseWriter) end() {
	w.ending.Store(true)
	_ = w.rc.SetWriteDeadline(time.Now())
}
