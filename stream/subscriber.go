package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// A subscriber's life, start to end:
//
//  1. Hub.admit counts it against the limits and gives it its own context.
//  2. Hub.Serve takes an HTTP/1.1 connection over from net/http (hijack):
//     net/http's writers are out of the way, serveConn writes the response
//     itself, and the hub's hangups (one epoll watch for every plain TCP
//     connection, hangup_linux.go) or else a readConn beside it notice
//     the client leaving. Anything else (HTTP/2) is served by
//     serveResponse through the ResponseWriter.
//  3. Either way r3labs' ServeHTTP serves it, writing to the subscriber
//     itself: the subscriber is the http.ResponseWriter r3labs writes to.
//     r3labs registers it with the shared stream and then calls
//     WriteHeader(200): from that moment every event published reaches it,
//     so WriteHeader counts it in (Hub.register).
//  4. Every event r3labs writes passes through Write and Flush: written to
//     the connection within a deadline, or dropped if it is older than the
//     subscriber (its id below from); of a cycle's event, a newcomer
//     writes only its own first events, carried as the comment
//     (withNewcomers), and everyone else all but those. The first event
//     it lets through is the first count that counts this subscriber in.
//  5. A failed or timed-out write, the client closing, falling too far
//     behind while stuck in a write (Hub.dropLagging), or the hub closing
//     cancels the context; r3labs deregisters it and ServeHTTP returns;
//     the hub writes the end of the response, closes a hijacked
//     connection, and Hub.leave counts it out.

const (
	// subscriberBuffer is the depth of each subscriber's r3labs channel
	// (fixed by r3labs).
	subscriberBuffer = 64
	// endTimeout bounds the write of a hijacked response's last chunk.
	endTimeout = time.Second
	// chunkRoom is the space kept in front of an event for its chunk-size
	// line: 16 hex digits and "\r\n", room for any length. A cycle's event
	// carries every arrival and departure of the cycle, profiles included,
	// so it has no size bound (four hex digits, 64 KiB, crashed the
	// process when a ramp announced a few hundred people at once).
	chunkRoom = 16 + 2
)

// subscriber is one open stream: one GET /events response.
type subscriber struct {
	hub    *Hub
	person Person
	remote string // the client's address (the request's RemoteAddr), for the log
	// reserved: the Limiter let this stream in and must be told it ended.
	reserved bool
	// unlink stops what else ends the stream (a Lifetime's Until, the
	// request of a detached stream); ended is the Lifetime's Ended.
	unlink []func() bool
	ended  func()
	ctx    context.Context
	cancel context.CancelFunc // ends the stream
	// from is the least event id this subscriber may be sent: none (the
	// maximum) until the broadcaster reads a count that includes it, then
	// the id of that cycle's first event. Events before it are dropped.
	from atomic.Uint64
	// registered is set, under Hub.mu, once r3labs has registered it.
	registered bool
	// at is the publish count (Hub.published) when the subscriber was
	// registered, plus every event it has begun to write since: how far
	// it has come (see Hub.dropLagging).
	at atomic.Uint64
	// writeSince is when the write to the connection going on now began
	// (Unix nanoseconds), 0 between writes: a subscriber long inside one
	// is stuck (see Hub.dropLagging).
	writeSince atomic.Int64

	// The connection: conn when hijacked, else w (and rc on w). plain is
	// the socket's own connection under conn's listener wrappers, the same
	// bytes, or nil under TLS.
	conn   net.Conn
	plain  net.Conn
	header http.Header // hijacked: the response head, until written
	w      http.ResponseWriter
	rc     *http.ResponseController
	// readerDone is closed when readConn has returned (hijacked only), or
	// at once if the hub's hangups watch the connection instead: then
	// hangupKey is its key there.
	readerDone chan struct{}
	hangupKey  uint64

	// ending is set by end: from then on every deadline is in the past.
	ending atomic.Bool
	// gone is set when the client has closed its side of a hijacked
	// connection, or it failed (clientLeft), and at the latest when the
	// stream is counted out (Hub.leave): whichever sets it first decides
	// whether the stream was one of Hub.departing.
	gone atomic.Bool

	// The rest belongs to the goroutine serving the stream.
	head        []byte    // hijacked: the response head, not yet written
	event       []byte    // hijacked: the event being written, after chunkRoom
	armedAt     time.Time // when the write deadline was last moved
	noDeadlines bool      // the writer takes no deadlines (a test recorder)
	// idleDisarm is set for HTTP/2 streams, whose write deadline is a
	// timer that resets the stream when it fires, writing or not: over
	// HTTP/1.1 a deadline that passes while nothing is written does
	// nothing. So an HTTP/2 stream drops its deadline after every flush,
	// or every stream quieter than WriteTimeout would be cut.
	idleDisarm bool
	started    bool   // an event has been let through
	writing    bool   // a Write happened since the last Flush
	skip       bool   // the event being written is dropped
	eventID    uint64 // id of the event being written, 0 for a heartbeat
	comment    bool   // the event being written is a heartbeat
	failed     bool   // a write failed: the stream is ending
}

// takeOver makes the subscriber the owner of conn, hijacked from net/http,
// with header as the start of its response head.
func (s *subscriber) takeOver(conn net.Conn, header http.Header) {
	// A read deadline the server set for requests would end readConn.
	_ = conn.SetReadDeadline(time.Time{})
	s.hub.mu.Lock() // end and stuck may look at conn from another goroutine
	s.conn = conn
	s.hub.mu.Unlock()
	s.header = header
	s.plain = under(conn, false)
	s.readerDone = make(chan struct{})
}

// serveConn serves a hijacked connection until the stream ends, then
// closes it.
func (s *subscriber) serveConn() {
	if s.hub.hangups.watch(s) {
		close(s.readerDone)
	} else {
		go s.readConn()
	}
	s.serveSSE()
	if !s.failed && s.head == nil && !s.ending.Load() && !s.gone.Load() {
		// The end of the chunked body: the client sees a finished response.
		// Not for a client that has left: nobody reads it, and its closed
		// socket answers the write with a reset.
		_ = s.conn.SetWriteDeadline(time.Now().Add(endTimeout))
		_, _ = s.conn.Write([]byte("0\r\n\r\n"))
	}
	s.hub.hangups.forget(s)
	if tcp, ok := s.plain.(*net.TCPConn); ok && s.gone.Load() {
		// The client has closed its end: a reset ends ours at once, where
		// a FIN would draw one more packet back from its closed socket.
		_ = tcp.SetLinger(0)
	}
	s.conn.Close()
	<-s.readerDone
	s.cancel()
	s.hub.leave(s)
}

// readConn waits for the client to close (or the network to fail) and
// then ends the stream, for a connection the hub's hangups do not watch
// (TLS, or no epoll). An SSE client sends nothing after its request;
// anything it does send is discarded.
func (s *subscriber) readConn() {
	defer close(s.readerDone)
	var buf [16]byte
	for {
		if _, err := s.conn.Read(buf[:]); err != nil {
			s.clientLeft()
			return
		}
	}
}

// clientLeft ends the stream of a hijacked connection whose client closed
// it (or half-closed it: the two look the same from here) or whose
// network failed.
func (s *subscriber) clientLeft() {
	// Counted before gone is set, so Hub.leave, which takes it back once
	// gone is set, never takes it back first.
	s.hub.departing.Add(1)
	if s.gone.CompareAndSwap(false, true) {
		s.hub.hungUp.Add(1)
	} else {
		s.hub.departing.Add(-1) // it had left, or been counted, already
	}
	s.cancel()
}

// serveResponse serves the stream through w, on the caller's goroutine,
// until it ends.
func (s *subscriber) serveResponse(w http.ResponseWriter, r *http.Request) {
	s.idleDisarm = r.ProtoMajor >= 2
	s.hub.mu.Lock() // end may look at rc from another goroutine
	s.w = w
	s.rc = http.NewResponseController(errorReporting(w))
	s.hub.mu.Unlock()
	// The server's WriteTimeout is for pages; the stream arms its own.
	s.setDeadline(time.Time{})
	s.serveSSE()
	// Give net/http's closing write of the response the same bounded time.
	s.armedAt = time.Time{}
	s.armDeadline()
	s.cancel()
	s.hub.leave(s)
}

// serveSSE has r3labs serve the stream until it ends. A panic while
// serving it (in r3labs or in the subscriber's writes) ends this stream
// alone, as a failed write would: it is logged with its stack, and the
// caller closes the connection and counts the stream out. Unrecovered, it
// would crash the process on the hub's own goroutine (a Lifetime's
// stream), or be recovered by net/http on a connection it no longer owns,
// leaving a silent subscriber still counted.
func (s *subscriber) serveSSE() {
	defer func() {
		if v := recover(); v != nil {
			s.failed = true // nothing more is written: an event may be half out
			s.cancel()      // r3labs deregisters it
			s.hub.cfg.Logger.Error("stream: serving a stream panicked; ending it",
				"user", s.person.ID, "remote", s.remote, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	s.hub.sse.ServeHTTP(s, s.hub.request.WithContext(s.ctx))
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

// Header is the response head r3labs fills in before WriteHeader.
func (s *subscriber) Header() http.Header {
	switch {
	case s.w != nil:
		return s.w.Header()
	case s.header == nil:
		s.header = http.Header{}
	}
	return s.header
}

// WriteHeader starts the response. r3labs calls it right after it has
// registered the subscriber with the shared stream, so this is the moment
// the subscriber is counted in.
func (s *subscriber) WriteHeader(code int) {
	if s.w != nil {
		s.w.WriteHeader(code)
	} else {
		s.head = appendHead(s.head, code, s.header)
		s.header = nil
	}
	if code == http.StatusOK {
		s.hub.register(s)
	}
}

// appendHead appends an HTTP/1.1 response head with a chunked body: the
// header's fields as http.Header.Write writes them (invalid names left
// out, line breaks in values turned to spaces, values trimmed), but in no
// fixed order and without its sorting and buffer, which a ramp's profile
// found at a twentieth of a connect's CPU. Content-Length,
// Transfer-Encoding and Date are the hub's own.
func appendHead(b []byte, code int, h http.Header) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\n"...)
	for k, vs := range h {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Date":
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			start := len(b)
			b = append(b, textproto.TrimString(v)...)
			for i := start; i < len(b); i++ {
				if b[i] == '\r' || b[i] == '\n' {
					b[i] = ' '
				}
			}
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "Transfer-Encoding: chunked\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	return append(b, "\r\n\r\n"...)
}

// Write takes one piece of an event; r3labs writes each field separately
// and then flushes the event. The first piece decides whether the event
// goes out at all; the comment of an event with an id carries the
// newcomers' first events, and goes out only to a newcomer
// (newcomersPart).
func (s *subscriber) Write(p []byte) (int, error) {
	switch {
	case !s.writing:
		s.writing = true
		s.startEvent(p)
	case s.eventID != 0 && len(p) > 0 && p[0] == ':':
		// The comment of an event with an id: the newcomers' first
		// events (withNewcomers), which only a newcomer writes.
		if !s.newcomersPart(p) {
			return len(p), nil
		}
		p = p[len(": "):]
	}
	if s.skip || s.failed {
		return len(p), nil
	}
	if s.conn != nil {
		if len(p) >= passThrough {
			s.writeThrough(p)
			return len(p), nil
		}
		if s.event == nil {
			s.event = make([]byte, chunkRoom, 96)
		}
		s.event = append(s.event, p...)
		return len(p), nil
	}
	s.startWrite()
	_, err := s.w.Write(p)
	s.writeSince.Store(0)
	if err != nil {
		s.fail()
	}
	return len(p), nil
}

// startEvent decides from an event's first field (its "id:" line) whether
// it is sent: one older than the subscriber is dropped; newcomers' first
// events (an odd first id) go only to a subscriber that has had nothing,
// everything else only to one that has; a heartbeat before the first
// event is dropped too, and so is one with an event for everyone right
// behind it, and anything once the client has gone (clientLeft). Every
// event counts in at, sent or not: it has left the subscriber's r3labs
// channel.
func (s *subscriber) startEvent(p []byte) {
	s.at.Add(1)
	s.comment = len(p) > 0 && p[0] == ':'
	// Nothing goes to a client that has left: r3labs hands it events until
	// its relay loop takes it out, and each would be a write and a reset
	// for nobody.
	gone := s.gone.Load()
	s.skip = !s.started || gone
	s.eventID = 0
	id, ok := leadingID(p)
	if !ok {
		// A heartbeat with an event for everyone behind it is dropped:
		// the event follows at once (Hub.beatFollowed).
		s.skip = s.skip || (s.comment && s.hub.beatFollowed())
		return
	}
	s.eventID = id
	// Newcomers' first events go to those who have had nothing yet; the
	// rest to those who have. Both only from the subscriber's own cycle on.
	s.skip = id < s.from.Load() || newcomersOnly(id) == s.started || gone
	s.started = s.started || !s.skip
}

// newcomersPart reports whether p, the comment of an event with an id,
// holds the subscriber's own first events: it has had nothing yet, and
// the comment's first id is a newcomers' one from its cycle on. The rest
// of the event (the blank line that ends it) is then written too.
func (s *subscriber) newcomersPart(p []byte) bool {
	if s.started || s.gone.Load() {
		return false
	}
	id, ok := leadingID(bytes.TrimPrefix(p, []byte(": ")))
	if !ok || id < s.from.Load() || !newcomersOnly(id) {
		return false
	}
	s.skip, s.started = false, true
	return true
}

// leadingID is the id of the "id:" line p starts with: the one r3labs
// writes alone, or the first of the newcomers' parts (withNewcomers).
func leadingID(p []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(p, []byte("id: "))
	if !ok {
		return 0, false
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	id, err := strconv.ParseUint(string(line), 10, 64)
	return id, err == nil
}

// Flush writes the event (or, after WriteHeader, the response head) to
// the connection within the deadline.
func (s *subscriber) Flush() {
	event, skipped := s.writing && !s.skip, s.writing && s.skip
	defer func() { s.writing = false }()
	if s.writing && s.eventID != 0 && s.eventID == s.hub.measured.Load() {
		// Done with the event the broadcaster measures, sent or not; sent,
		// it is measured once written (below).
		if skipped || s.failed {
			s.hub.delivery()
		} else {
			defer s.hub.delivery()
		}
	}
	if s.failed || skipped {
		return
	}
	var out []byte // what goes on a hijacked connection
	switch {
	case s.conn != nil && s.head != nil:
		out, s.head = s.head, nil
	case s.conn != nil && event && len(s.event) > chunkRoom:
		// (Nothing gathered, after writeThrough, is nothing to write: an
		// empty chunk would end the response.)
		out = chunk(s.event)
		s.event = s.event[:chunkRoom]
	}
	var err error
	if out != nil || s.conn == nil {
		s.startWrite()
		if out != nil {
			_, err = s.conn.Write(out)
		} else {
			err = s.rc.Flush()
		}
		s.writeSince.Store(0)
	}
	if s.idleDisarm && err == nil && !s.ending.Load() {
		s.armedAt = time.Time{}
		s.setDeadline(time.Time{})
	}
	switch {
	case err != nil:
		s.fail()
	case event:
		s.hub.stats.eventsSent.Add(1)
	}
}

// passThrough is the least piece of an event that writeThrough writes at
// once instead of gathering it into the subscriber's buffer: a cycle's
// user events (a few hundred bytes each) are gathered up to a dozen or so.
const passThrough = 4 << 10

// writeThrough writes, on a hijacked connection, the part of the event
// gathered so far and p, each as a chunk of its own, in one writev(2). A
// large piece (a cycle that announces many people) is not copied into
// every subscriber's buffer, which then kept its size: 10,000 streams of
// 5,000 people, ramped up, held 1.1 GB that way, live after a collection.
// The rest of the event goes out at Flush.
func (s *subscriber) writeThrough(p []byte) {
	var size [chunkRoom]byte
	bufs := make(net.Buffers, 0, 4)
	if len(s.event) > chunkRoom {
		bufs = append(bufs, chunk(s.event))
	}
	hex := append(strconv.AppendInt(size[:0], int64(len(p)), 16), '\r', '\n')
	bufs = append(bufs, hex, p, []byte("\r\n"))
	// The socket itself, where there is no TLS: net.Buffers reach
	// writev(2) only on the net package's own connections, and a listener
	// wrapper would turn them into a write(2) each.
	var w io.Writer = s.conn
	if s.plain != nil {
		w = s.plain
	}
	s.startWrite()
	_, err := bufs.WriteTo(w)
	s.writeSince.Store(0)
	if s.event != nil {
		s.event = s.event[:chunkRoom]
	}
	if err != nil {
		s.fail()
	}
}

// chunk frames the event in b[chunkRoom:] as one HTTP/1.1 chunk, in place,
// and returns the frame.
func chunk(b []byte) []byte {
	n := len(b) - chunkRoom
	var size [8]byte
	hex := strconv.AppendInt(size[:0], int64(n), 16)
	start := chunkRoom - len(hex) - 2
	copy(b[start:], hex)
	b[chunkRoom-2], b[chunkRoom-1] = '\r', '\n'
	return append(b, '\r', '\n')[start:]
}

// startWrite marks a write to the connection begun (writeSince, cleared
// once it is over) and arms its deadline, with one look at the clock for
// both. The mark comes first: whatever blocks from here on counts as the
// write's.
func (s *subscriber) startWrite() {
	now := time.Now()
	s.writeSince.Store(now.UnixNano())
	s.armDeadlineAt(now)
}

// stuck reports whether the subscriber has been inside one write for
// stuckWrite by now, on a socket its client does not read from (see
// congested; the socket is looked up only then, which is rare). The
// caller holds Hub.mu (conn).
func (s *subscriber) stuck(now time.Time) bool {
	since := s.writeSince.Load()
	return since != 0 && now.UnixNano()-since >= int64(stuckWrite) && congested(socketOf(s.conn))
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (s *subscriber) Unwrap() http.ResponseWriter { return s.w }

// fail ends the stream after a failed write: nothing more is written.
func (s *subscriber) fail() {
	if s.failed {
		return
	}
	s.failed = true
	if s.writing && s.comment {
		s.hub.stats.heartbeatFailures.Add(1)
	}
	s.cancel()
}

// armDeadline gives the next write between WriteTimeout/2 and WriteTimeout
// to finish, or no time at all once the stream is ending. A deadline set
// less than WriteTimeout/2 ago is kept: moving it for every event cost
// about a tenth of the fan-out, and a stuck client is still dropped within
// WriteTimeout. Setting the deadline before checking ending (while end
// sets ending before its own deadline) means end's past deadline wins.
func (s *subscriber) armDeadline() { s.armDeadlineAt(time.Now()) }

// armDeadlineAt is armDeadline with the time now.
func (s *subscriber) armDeadlineAt(now time.Time) {
	timeout := s.hub.cfg.WriteTimeout
	if now.Sub(s.armedAt) < timeout/2 {
		return
	}
	s.armedAt = now
	s.setDeadline(now.Add(timeout))
	if s.ending.Load() {
		s.setDeadline(time.Now())
	}
}

func (s *subscriber) setDeadline(t time.Time) {
	switch {
	case s.conn != nil:
		_ = s.conn.SetWriteDeadline(t)
	case s.noDeadlines:
	default:
		if err := s.rc.SetWriteDeadline(t); errors.Is(err, http.ErrNotSupported) {
			s.noDeadlines = true
		}
	}
}

// stop asks the stream to end cleanly. Any goroutine may call it.
func (s *subscriber) stop() { s.cancel() }

// end makes the stream's writes fail at once, including one blocked right
// now, and ends it. Hub.Close calls it under Hub.mu (which guards conn and
// rc against the goroutine setting them) for streams that did not end
// within closeGrace.
func (s *subscriber) end() {
	s.ending.Store(true)
	switch {
	case s.conn != nil:
		_ = s.conn.SetWriteDeadline(time.Now())
	case s.rc != nil:
		_ = s.rc.SetWriteDeadline(time.Now())
	}
	s.cancel()
}
