package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/stream"
)

// shownPeople is how many avatars the page shows; "and N more" says the rest.
const shownPeople = 12

// handleHome is the page: signed out, a sign-in button; signed in, the
// live count and a curl command with a fresh token for publicURL.
func handleHome(pages *Pages, signedIn *authenticator, tokens *auth.Tokens, hub *stream.Hub, publicURL string) echo.HandlerFunc {
	return func(c echo.Context) error {
		data := Page{Count: hub.Count(), People: hub.People()}
		sess, reason := signedIn.cookieSession(c.Request())
		switch reason {
		case "":
			if hub.ShowsNames() {
				online, total := hub.Online(shownPeople)
				data.ShowPeople, data.People, data.More = true, total, total-len(online)
				for _, p := range online {
					data.Online = append(data.Online, OnlinePerson{Login: p.Login, Name: p.Name, AvatarURL: p.AvatarURL})
				}
			}
			token, exp, err := tokens.Issue(sess)
			if err != nil {
				return err
			}
			data.User = &sess.User
			data.Token = token
			data.TokenExpires = exp.UTC().Format(time.RFC3339)
			data.CurlCommand = curlCommand(token, publicURL)
		case reasonNoCredentials:
		default:
			// A forged, tampered, expired or signed-out cookie: show the
			// signed-out page and drop the cookie.
			signedIn.sessions.Clear(c.Response())
		}
		return pages.render(c.Response(), http.StatusOK, "home.html", data)
	}
}

// curlCommand is the page's ready-to-copy command. The base URL is the
// operator's, not ours to trust in a shell: anything beyond plain URL
// characters is single-quoted, so pasting it never runs $(...) or `...`.
func curlCommand(token, publicURL string) string {
	return "curl -N -H " + shellQuote("Authorization: Bearer "+token) + " " + shellQuote(publicURL+"/events")
}

// shellQuote returns s as one POSIX shell word: as it is when made only
// of characters no shell treats specially, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
