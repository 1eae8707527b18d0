package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/stream"
)

// shownPeople is how many avatars the page shows; "and N more" says the rest.
const shownPeople = 12

// handleHome is the page: signed out, a sign-in button; signed in, the
// live count and a curl command with a fresh token for publicURL.
func handleHome(pages *Pages, sessions *auth.Sessions, tokens *auth.Tokens, hub *stream.Hub, publicURL string) echo.HandlerFunc {
	return func(c echo.Context) error {
		data := Page{Count: hub.Count(), People: hub.People()}
		u, err := sessions.Get(c.Request())
		switch {
		case err == nil:
			if hub.ShowsNames() {
				online, total := hub.Online(shownPeople)
				data.ShowPeople, data.People, data.More = true, total, total-len(online)
				for _, p := range online {
					data.Online = append(data.Online, OnlinePerson{Login: p.Login, Name: p.Name, AvatarURL: p.AvatarURL})
				}
			}
			token, exp, err := tokens.Issue(u)
			if err != nil {
				return err
			}
			data.User = &u
			data.Token = token
			data.TokenExpires = exp.UTC().Format(time.RFC3339)
			data.CurlCommand = fmt.Sprintf("curl -N -H \"Authorization: Bearer %s\" %s/events", token, publicURL)
		case !errors.Is(err, auth.ErrNoCredentials):
			// A forged, tampered or expired cookie: show the signed-out
			// page and drop the cookie.
			sessions.Clear(c.Response())
		}
		return pages.render(c.Response(), http.StatusOK, "home.html", data)
	}
}
