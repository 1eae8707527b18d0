package handlers

import (
	"fmt"
	"net/http"
	"strconv"
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
		token, exp, err := tokens.Issue(sessionOf(c))
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, tokenResponse{Token: token, ExpiresAt: exp.UTC().Format(time.RFC3339)})
	}
}

// countResponse is GET /api/count's answer. Partial is there only while
// the shared count is unavailable and the numbers are this instance's best
// knowledge.
type countResponse struct {
	UserCount   int  `json:"user_count"`
	PeopleCount int  `json:"people_count"`
	Partial     bool `json:"partial,omitempty"`
}

// handleCount answers the live counts: streams and people.
func handleCount(hub *stream.Hub) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		s := hub.Stats() // one snapshot: the counts and whether they are partial
		return c.JSON(http.StatusOK, countResponse{UserCount: int(s.Global), PeopleCount: int(s.People), Partial: s.Partial})
	}
}

// Limits of GET /api/presence's ?limit=.
const (
	defaultPresenceLimit = 100
	maxPresenceLimit     = 1000
)

// presenceResponse is GET /api/presence's answer.
type presenceResponse struct {
	UserCount   int              `json:"user_count"`
	PeopleCount int              `json:"people_count"`
	People      []presencePerson `json:"people"`
}

// presencePerson is one entry of the people list: the public profile and
// the person's streams on every instance.
type presencePerson struct {
	Login     string `json:"login"`
	Name      string `json:"name"`
	AvatarURL string `json:"avatar_url"`
	Streams   int    `json:"streams"`
}

// handlePresence answers who is online, in the order they came online,
// at most ?limit= of them; people_count is always everyone. With
// HEADCOUNT_PRESENCE=count the hub lists nobody.
func handlePresence(hub *stream.Hub) echo.HandlerFunc {
	return func(c echo.Context) error {
		limit := defaultPresenceLimit
		if v, ok := c.QueryParams()["limit"]; ok {
			// ParseUint takes digits alone: no sign, blank, prefix or "_".
			n, err := strconv.ParseUint(v[0], 10, 64)
			if len(v) != 1 || err != nil || n < 1 || n > maxPresenceLimit {
				// A problem, so the refusal is JSON like every /api/ error.
				return &problem{status: http.StatusBadRequest, title: "Bad request",
					message: fmt.Sprintf("limit must be a whole number from 1 to %d (default %d)", maxPresenceLimit, defaultPresenceLimit)}
			}
			limit = int(n)
		}
		online, total := hub.Online(limit)
		resp := presenceResponse{UserCount: hub.Count(), PeopleCount: total, People: make([]presencePerson, 0, len(online))}
		for _, p := range online {
			resp.People = append(resp.People, presencePerson{Login: p.Login, Name: p.Name, AvatarURL: p.AvatarURL, Streams: p.Streams})
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, resp)
	}
}
