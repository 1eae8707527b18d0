package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/markbates/goth/providers/github"
	"golang.org/x/oauth2"

	"github.com/headcount/headcount/auth"
)

// Reasons for the sign-in failure metric.
const (
	signinDenied      = "denied"
	signinBadState    = "bad_state"
	signinNoCode      = "no_code"
	signinCodeRefused = "code_refused"
	signinProvider    = "provider_unavailable"
	signinProxied     = "dev_through_proxy"
)

// handleBeginSignIn sends the browser to the provider with a fresh state
// and the S256 challenge of a fresh PKCE verifier, both kept in a cookie
// of this sign-in's own. gothic is not used: its SetState copies ?state=
// from the request (login CSRF) and its store is a package global. goth
// has no PKCE hook, so the challenge is added to the URL it builds.
func handleBeginSignIn(provider *github.Provider, states *auth.OAuthStates) echo.HandlerFunc {
	return func(c echo.Context) error {
		state, verifier := auth.NewState(), auth.NewVerifier()
		sess, err := provider.BeginAuth(state)
		if err != nil {
			return err
		}
		to, err := sess.GetAuthURL()
		if err != nil {
			return err
		}
		if to, err = withChallenge(to, auth.Challenge(verifier)); err != nil {
			return err
		}
		if err := states.Begin(c.Response(), c.Request(), state, verifier, sess.Marshal()); err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusFound, to)
	}
}

// withChallenge adds a PKCE S256 challenge to an authorize URL.
func withChallenge(authURL, challenge string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// signInFinisher is the OAuth callback's handler and what it uses.
type signInFinisher struct {
	provider *github.Provider
	exchange *oauth2.Config
	states   *auth.OAuthStates
	sessions *auth.Sessions
	metrics  *Metrics
	log      *slog.Logger
}

// handleFinishSignIn checks the state, exchanges the code with the
// state's PKCE verifier (through exchange: goth cannot send one), lets
// goth read the profile and starts the session. Any failure is a clear
// page and no session; a callback for a state this browser does not hold
// clears nothing, so a crafted link cannot cancel a sign-in in progress.
func handleFinishSignIn(provider *github.Provider, exchange *oauth2.Config, states *auth.OAuthStates, sessions *auth.Sessions, metrics *Metrics, log *slog.Logger) echo.HandlerFunc {
	f := &signInFinisher{provider: provider, exchange: exchange, states: states, sessions: sessions, metrics: metrics, log: log}
	return f.finish
}

func (f *signInFinisher) finish(c echo.Context) error {
	q := c.Request().URL.Query()
	pending, stateErr := f.states.Finish(c.Response(), c.Request(), q.Get("state"))
	if e := q.Get("error"); e != "" {
		if e == "access_denied" {
			return f.signinFailed(signinDenied, http.StatusForbidden, "Sign-in cancelled",
				"GitHub did not sign you in because the request was declined. You can try again from the home page.", nil)
		}
		// The error code is logged, not shown: a crafted link must not put
		// its words on this origin's page.
		return f.signinFailed(signinCodeRefused, http.StatusBadRequest, "Sign-in refused",
			"GitHub refused the sign-in. Try again from the home page.", fmt.Errorf("provider error %q", e))
	}
	if stateErr != nil {
		return f.signinFailed(signinBadState, http.StatusBadRequest, "Sign-in could not be checked",
			"This sign-in link is expired, was already used, or was started in another browser. Start again from the home page.", stateErr)
	}
	code := q.Get("code")
	if code == "" {
		return f.signinFailed(signinNoCode, http.StatusBadRequest, "Sign-in incomplete",
			"GitHub's answer carried no authorization code. Start again from the home page.", nil)
	}
	sess, err := f.provider.UnmarshalSession(pending.Session)
	gs, ok := sess.(*github.Session)
	if err != nil || !ok {
		return f.signinFailed(signinBadState, http.StatusBadRequest, "Sign-in could not be checked",
			"This sign-in could not be read. Start again from the home page.", err)
	}
	ctx := context.WithValue(c.Request().Context(), oauth2.HTTPClient, f.provider.HTTPClient)
	tok, err := f.exchange.Exchange(ctx, code, oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		if unreachable(err) {
			return f.signinFailed(signinProvider, http.StatusBadGateway, "GitHub is unreachable",
				"headcount could not reach GitHub to finish signing you in. Try again in a moment.", err)
		}
		return f.signinFailed(signinCodeRefused, http.StatusBadRequest, "Sign-in refused",
			"GitHub did not accept this sign-in code; it may have expired or been used already. Start again from the home page.", err)
	}
	gs.AccessToken = tok.AccessToken
	gu, err := f.provider.FetchUser(gs)
	// goth reads the profile, then the e-mail addresses when the profile
	// shows none. The e-mail is not needed: once the profile gave an id and
	// a login, a failed e-mail lookup (no verified primary, an Enterprise
	// without the endpoint) does not stop the sign-in. Long fields are cut
	// so the session fits its cookie.
	u := auth.User{ID: gu.UserID, Login: gu.NickName, Name: gu.Name, AvatarURL: gu.AvatarURL}.Cut()
	if !u.Valid() {
		if err == nil {
			err = errors.New("profile without a usable id or login")
		}
		return f.signinFailed(signinProvider, http.StatusBadGateway, "GitHub did not answer",
			"headcount could not read your GitHub profile. Try again in a moment.", err)
	}
	if err := f.sessions.Set(c.Response(), auth.NewSession(u, time.Now())); err != nil {
		return err
	}
	f.log.Info("signed in", "user_id", u.ID, "login", u.Login)
	return c.Redirect(http.StatusSeeOther, "/")
}

// unreachable reports whether err is the provider failing rather than
// refusing: no connection, a timeout, or a 5xx.
func unreachable(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.Response != nil && re.Response.StatusCode >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

func (f *signInFinisher) signinFailed(reason string, status int, title, message string, cause error) error {
	f.metrics.signinFailures.WithLabelValues(reason).Inc()
	return &problem{status: status, title: title, message: message, cause: cause}
}

// handleLogout signs the session out: its cookie is cleared here, and the
// session is revoked through revoker, so a copy of the cookie, every token
// minted from it and the streams they hold end on every instance. With
// everywhere=1 ("Sign out everywhere") every session of the GitHub account
// ends. Only a session still signed in can: a copy of a cookie already
// signed out ends nothing (it would end its owner's later sessions). It is
// POST only (GET /logout is 405), behind cross-origin protection, so no
// link or image can sign anyone out.
func handleLogout(signedIn *authenticator, revoker auth.Revoker, log *slog.Logger) echo.HandlerFunc {
	return func(c echo.Context) error {
		if sess, reason := signedIn.cookieSession(c.Request()); reason == "" {
			rv := auth.RevokeSession(sess)
			if c.FormValue("everywhere") == "1" {
				rv = auth.RevokeUser(sess.User.ID, time.Now())
			}
			if err := revoker.Revoke(c.Request().Context(), rv); err != nil {
				return err
			}
			log.Info("signed out", "user_id", sess.User.ID, "everywhere", rv.User != "")
		}
		signedIn.sessions.Clear(c.Response())
		return c.Redirect(http.StatusSeeOther, "/")
	}
}
