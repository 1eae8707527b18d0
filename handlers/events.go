package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/internal/connlimit"
	"github.com/headcount/headcount/stream"
)

// Retry-After values for refused streams, in seconds.
const (
	retryAfterFull     = "5"
	retryAfterShutdown = "1"
)

// handleEvents holds the live stream. require has admitted the request;
// the hub writes nothing when it refuses, so the status and the words of
// a refusal are chosen here, and only here.
//
// The stream ends the moment its session is signed out, here or (through
// the shared store) on another instance: the stream may outlive its
// request, so it is not the request's context that ends it but the
// revocation watch, handed to the hub as the stream's Lifetime.Until.
// While it lasts its connection does not count against the cap on
// connections that hold no stream.
func handleEvents(hub *stream.Hub, revocations *auth.Revocations) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodHead {
			// The stream's headers, and no stream: a HEAD never counts.
			h := c.Response().Header()
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no")
			return c.NoContent(http.StatusOK)
		}
		sess := sessionOf(c)
		u := sess.User
		req := c.Request()
		// The stream may outlive the request (the hub takes an HTTP/1.1
		// connection over and lets the handler return), so what it needs
		// until its end goes to the hub in a Lifetime: the revocation watch
		// (not tied to the request's own end), the connection cap's hold,
		// and the request line, written when the stream ends.
		watch, stopWatching := revocations.Watch(context.WithoutCancel(req.Context()), sess)
		release := connlimit.Hold(req.Context())
		line, _ := c.Get(streamLineKey).(*streamLine) // logRequests'
		ended := func() {
			release()
			stopWatching()
			line.ended(time.Now())
		}
		ctx := stream.WithLifetime(req.Context(), stream.Lifetime{Until: watch, Ended: ended, TakenOver: line.takeOver})
		err := hub.Serve(c.Response(), req.WithContext(ctx), stream.Person{ID: u.ID, Login: u.Login, Name: u.Name, AvatarURL: u.AvatarURL})
		w := c.Response()
		if err != nil {
			release()
			stopWatching()
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, stream.ErrUserLimit):
			return c.String(http.StatusTooManyRequests, "too many streams open for this user; close one (another tab or curl) and retry\n")
		case errors.Is(err, stream.ErrInstanceLimit):
			w.Header().Set("Retry-After", retryAfterFull)
			return c.String(http.StatusServiceUnavailable, "this server holds as many streams as it can; retry shortly\n")
		case errors.Is(err, stream.ErrClosed):
			w.Header().Set("Retry-After", retryAfterShutdown)
			return c.String(http.StatusServiceUnavailable, "this server is shutting down; reconnect to continue\n")
		}
		return err
	}
}

// streamLineKey is where logRequests leaves a stream's streamLine for
// the stream handler.
const streamLineKey = "headcount.streamLine"

// streamLine is the request line of a stream. Once the hub has taken the
// stream's connection over (takeOver, on the handler's goroutine before
// the stream can end), the handler returns at once and the stream's end
// writes the line (ended, run by the hub, whose Close waits for it), so
// no line waits on a handler goroutine the shutdown does not wait for.
// Otherwise logRequests writes it as any other. A nil streamLine (no
// logRequests in front) does nothing.
type streamLine struct {
	write func(head, end time.Time) // logRequests': writes the line
	head  time.Time                 // when the hub took the connection over; zero: it did not
}

func (l *streamLine) takeOver() {
	if l != nil {
		l.head = time.Now()
	}
}

// ended writes the line of a stream the hub took over, now that it has ended.
func (l *streamLine) ended(end time.Time) {
	if l != nil && !l.head.IsZero() {
		l.write(l.head, end)
	}
}

// takenOver reports whether the stream's end writes the line.
func (l *streamLine) takenOver() bool { return l != nil && !l.head.IsZero() }
