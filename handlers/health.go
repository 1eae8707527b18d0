package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/headcount/headcount/stream"
)

// readyTimeout bounds a readiness check, so a probe learns "not ready"
// rather than timing out itself while Redis is unreachable.
const readyTimeout = time.Second

// handleHealthz answers 200 while the process serves.
func handleHealthz() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.String(http.StatusOK, "ok\n")
	}
}

// handleReadyz answers 200 while the hub takes streams (and its count
// store is reachable), else 503.
func handleReadyz(hub *stream.Hub) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		defer cancel()
		if err := hub.Ready(ctx); err != nil {
			return c.String(http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
		}
		return c.String(http.StatusOK, "ready\n")
	}
}
