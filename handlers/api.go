package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/stream"
)

// tokenResponse is POST /api/token's answer.
type tokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

// handleIssueToken gives a signed-in browser a bearer token for curl and
// other command-line clients.
func handleIssueToken(tokens *auth.Tokens) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, exp, err := tokens.Issue(userOf(c))
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, tokenResponse{Token: token, ExpiresAt: exp.UTC().Format(time.RFC3339)})
	}
}

// handleCount answers the live count.
func handleCount(hub *stream.Hub) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, map[string]int{"user_count": hub.Count()})
	}
}
