package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
)

// OAuthStateCookie holds a sign-in in progress: the state sent to the
// provider and the provider's session. It is scoped to /auth and lives ten
// minutes.
const OAuthStateCookie = "headcount_oauth"

const (
	oauthStatePath     = "/auth"
	oauthStateLifetime = 10 * time.Minute
	stateBytes         = 32
)

// ErrStateMismatch means a callback's state is missing, wrong or belongs to
// another browser: a possible login CSRF, never a session.
var ErrStateMismatch = errors.New("the sign-in state does not match this browser's")

// OAuthStates keeps the state of sign-ins in progress in a cookie of their
// own, with keys of their own, instead of gothic's package-global store.
type OAuthStates struct {
	codec  *securecookie.SecureCookie
	secure bool
}

// pending is what the state cookie holds.
type pending struct {
	State   string `json:"s"`
	Session string `json:"p"` // the goth provider session, marshalled
}

// NewOAuthStates returns an OAuthStates keyed by secret.
func NewOAuthStates(secret []byte, secure bool) *OAuthStates {
	codec := securecookie.New(deriveKey(secret, "oauth hash", 64), deriveKey(secret, "oauth block", 32))
	codec.MaxAge(int(oauthStateLifetime / time.Second))
	codec.SetSerializer(securecookie.JSONEncoder{})
	return &OAuthStates{codec: codec, secure: secure}
}

// NewState returns an unguessable state: 32 random bytes, never anything
// taken from the request.
func NewState() string {
	b := make([]byte, stateBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Begin remembers state and the provider session for this browser.
func (o *OAuthStates) Begin(w http.ResponseWriter, state, providerSession string) error {
	v, err := o.codec.Encode(OAuthStateCookie, pending{State: state, Session: providerSession})
	if err != nil {
		return fmt.Errorf("encode oauth state: %w", err)
	}
	http.SetCookie(w, o.cookie(v, int(oauthStateLifetime/time.Second)))
	return nil
}

// Finish checks the callback's state against this browser's cookie and
// returns the provider session. The cookie is cleared whatever the outcome,
// so a state is good for one callback only.
func (o *OAuthStates) Finish(w http.ResponseWriter, r *http.Request, state string) (string, error) {
	http.SetCookie(w, o.cookie("", -1))
	c, err := r.Cookie(OAuthStateCookie)
	if err != nil || state == "" {
		return "", ErrStateMismatch
	}
	var p pending
	if err := o.codec.Decode(OAuthStateCookie, c.Value, &p); err != nil {
		return "", ErrStateMismatch
	}
	if p.State == "" || subtle.ConstantTimeCompare([]byte(p.State), []byte(state)) != 1 {
		return "", ErrStateMismatch
	}
	return p.Session, nil
}

func (o *OAuthStates) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     OAuthStateCookie,
		Value:    value,
		Path:     oauthStatePath,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   o.secure,
		SameSite: http.SameSiteLaxMode,
	}
}
