package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/headcount/headcount/auth"
)

// sessionKey is where require leaves the request's session in
// echo.Context.
const sessionKey = "headcount.session"

// credentials says which proofs of identity a route accepts.
type credentials int

const (
	// anyCredential accepts a bearer token, else the session cookie.
	anyCredential credentials = iota
	// sessionOnly accepts only the session cookie: a token cannot mint
	// tokens, so a leaked one cannot be extended.
	sessionOnly
)

// Reasons for the auth failure metric.
const (
	reasonNoCredentials = "no_credentials"
	reasonBadToken      = "bad_token"
	reasonBadCookie     = "bad_cookie"
	reasonTokenRefused  = "token_not_accepted"
	reasonRevoked       = "signed_out"
)

// authenticator admits requests that carry a valid session cookie or
// bearer token of a session that was not signed out.
type authenticator struct {
	sessions    *auth.Sessions
	tokens      *auth.Tokens
	revocations *auth.Revocations
	metrics     *Metrics
}

func newAuthenticator(sessions *auth.Sessions, tokens *auth.Tokens, revocations *auth.Revocations, metrics *Metrics) *authenticator {
	return &authenticator{sessions: sessions, tokens: tokens, revocations: revocations, metrics: metrics}
}

// require admits a request only with a credential accept allows, of a
// session not signed out, and leaves the session in the context. A
// request whose Authorization header uses the Bearer scheme is judged by
// the bearer alone: a bad one is 401 even beside a good cookie. Any other
// scheme (a proxy's Basic, say) is not ours and is ignored.
func (a *authenticator) require(accept credentials) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			sess, reason := a.identify(c.Request(), accept)
			if reason != "" {
				a.metrics.authFailures.WithLabelValues(reason).Inc()
				return unauthorized(c, reason)
			}
			c.Set(sessionKey, sess)
			return next(c)
		}
	}
}

// identify finds the request's session, or the reason there is none.
func (a *authenticator) identify(r *http.Request, accept credentials) (auth.Session, string) {
	if h, ok := bearerHeader(r); ok {
		if accept == sessionOnly {
			return auth.Session{}, reasonTokenRefused
		}
		token, ok := auth.Bearer(h)
		if !ok {
			return auth.Session{}, reasonBadToken
		}
		sess, err := a.tokens.Verify(token)
		switch {
		case err != nil:
			return auth.Session{}, reasonBadToken
		case a.revocations.Revoked(sess):
			return auth.Session{}, reasonRevoked
		}
		return sess, ""
	}
	return a.cookieSession(r)
}

// cookieSession is the session of the request's cookie, or the reason
// there is none: no cookie, a bad one, or one signed out. Everything that
// trusts the cookie (the API, the page, sign-out) asks here.
func (a *authenticator) cookieSession(r *http.Request) (auth.Session, string) {
	sess, err := a.sessions.Get(r)
	switch {
	case errors.Is(err, auth.ErrNoCredentials):
		return auth.Session{}, reasonNoCredentials
	case err != nil:
		return auth.Session{}, reasonBadCookie
	case a.revocations.Revoked(sess):
		return auth.Session{}, reasonRevoked
	}
	return sess, ""
}

// bearerHeader returns the request's Authorization value if it uses the
// Bearer scheme. Of several Authorization headers, a Bearer one decides;
// two Bearer ones are one too many and come back as a value no token
// matches.
func bearerHeader(r *http.Request) (string, bool) {
	var found []string
	for _, v := range r.Header.Values("Authorization") {
		if auth.IsBearer(v) {
			found = append(found, v)
		}
	}
	switch len(found) {
	case 0:
		return "", false
	case 1:
		return found[0], true
	}
	return "Bearer", true
}

// unauthorized answers 401 with a short text body (JSON under /api).
func unauthorized(c echo.Context, reason string) error {
	msg := "sign in first: this needs a session cookie or an Authorization: Bearer token"
	switch reason {
	case reasonBadToken:
		msg = "the bearer token is invalid or expired; get a new one from POST /api/token"
	case reasonBadCookie:
		msg = "the session is invalid or expired; sign in again"
	case reasonTokenRefused:
		msg = "this needs a browser session; bearer tokens are not accepted here"
	case reasonRevoked:
		msg = "this session was signed out; sign in again"
	}
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="headcount"`)
	c.Response().Header().Set("Cache-Control", "no-store")
	if isAPI(c.Request()) {
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": msg})
	}
	return c.String(http.StatusUnauthorized, msg+"\n")
}

// isAPI reports whether r is for the JSON API, whose errors are JSON.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// sessionOf returns the session require admitted.
func sessionOf(c echo.Context) auth.Session {
	s, _ := c.Get(sessionKey).(auth.Session)
	return s
}
