package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/headcount/headcount/auth"
)

// userKey is where require leaves the request's user in echo.Context.
const userKey = "headcount.user"

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
)

// authenticator admits requests that carry a valid session cookie or
// bearer token.
type authenticator struct {
	sessions *auth.Sessions
	tokens   *auth.Tokens
	metrics  *Metrics
}

func newAuthenticator(sessions *auth.Sessions, tokens *auth.Tokens, metrics *Metrics) *authenticator {
	return &authenticator{sessions: sessions, tokens: tokens, metrics: metrics}
}

// require admits a request only with a credential accept allows and leaves
// its user in the context. A request that carries a bearer is judged by the
// bearer alone: a bad one is 401 even beside a good cookie.
func (a *authenticator) require(accept credentials) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u, reason := a.identify(c.Request(), accept)
			if reason != "" {
				a.metrics.authFailures.WithLabelValues(reason).Inc()
				return unauthorized(c, reason)
			}
			c.Set(userKey, u)
			return next(c)
		}
	}
}

// identify finds the request's user, or the reason there is none.
func (a *authenticator) identify(r *http.Request, accept credentials) (auth.User, string) {
	if h := r.Header.Get("Authorization"); h != "" {
		if accept == sessionOnly {
			return auth.User{}, reasonTokenRefused
		}
		token, ok := bearer(h)
		if !ok {
			return auth.User{}, reasonBadToken
		}
		u, err := a.tokens.Verify(token)
		if err != nil {
			return auth.User{}, reasonBadToken
		}
		return u, ""
	}
	u, err := a.sessions.Get(r)
	switch {
	case errors.Is(err, auth.ErrNoCredentials):
		return auth.User{}, reasonNoCredentials
	case err != nil:
		return auth.User{}, reasonBadCookie
	}
	return u, ""
}

// bearer takes the token out of an Authorization header value.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
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

// userOf returns the user require admitted.
func userOf(c echo.Context) auth.User {
	u, _ := c.Get(userKey).(auth.User)
	return u
}
