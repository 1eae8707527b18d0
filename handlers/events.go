package handlers

import (
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
// the shared store) on another instance: revocations cancels its request
// context. While it lasts its connection does not count against the cap
// on connections that hold no stream.
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
		ctx, stopWatching := revocations.Watch(c.Request().Context(), sess)
		defer stopWatching()
		defer connlimit.Hold(ctx)()
		begun := time.Now()
		err := hub.Serve(c.Response(), c.Request().WithContext(ctx), stream.Person{ID: u.ID, Login: u.Login, Name: u.Name, AvatarURL: u.AvatarURL})
		w := c.Response()
		switch {
		case err == nil:
			if !w.Committed {
				// The hub took the connection over and wrote the 200 and
				// its head itself, right after begun: Echo's writer never
				// saw them, but the request line should.
				w.Status = http.StatusOK
				c.Set(streamHeadKey, begun)
			}
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
