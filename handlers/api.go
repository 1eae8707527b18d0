package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// tokenResponse is POST /api/token's answer.
type tokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

// issueToken gives a signed-in browser a bearer token for curl and other
// command-line clients.
func (a *app) issueToken(c echo.Context) error {
	token, exp, err := a.tokens.Issue(userOf(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, tokenResponse{Token: token, ExpiresAt: exp.UTC().Format(time.RFC3339)})
}

// count answers the live count.
func (a *app) count(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]int{"user_count": a.hub.Count()})
}

// readyTimeout bounds a readiness check, so a probe learns "not ready"
// rather than timing out itself while Redis is unreachable.
const readyTimeout = time.Second

// healthz answers 200 while the process serves.
func healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

// readyz answers 200 while the hub takes streams (and its count store is
// reachable), else 503.
func (a *app) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
	defer cancel()
	if err := a.hub.Ready(ctx); err != nil {
		return c.String(http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
	}
	return c.String(http.StatusOK, "ready\n")
}
