package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// OAuthStateCookie starts the name of every sign-in-in-progress cookie;
// each sign-in has its own, named after a hash of its state, so two tabs
// signing in at once do not overwrite each other and a callback for an
// unknown state finds nothing to clear. Under https the name also starts
// with HostPrefix.
const OAuthStateCookie = "headcount_oauth_"

const (
	oauthStateLifetime = 10 * time.Minute
	stateBytes         = 32
	// maxPending is how many sign-ins one browser may have in flight;
	// beginning one more drops the oldest, so a user who clicks sign-in
	// all day never grows a Cookie header past what the server reads.
	maxPending = 4
)

// ErrStateMismatch means a callback's state is missing, wrong, expired or
// belongs to another browser: a possible login CSRF, never a session.
var ErrStateMismatch = errors.New("the sign-in state does not match this browser's")

// OAuthStates keeps each sign-in in progress in a sealed cookie of its
// own: the state sent to the provider, the PKCE verifier bound to it and
// the provider's session. gothic's package-global store is not used.
type OAuthStates struct {
	seal   sealer
	secure bool
	prefix string
	now    func() time.Time
}

// Pending is a sign-in in progress, as Finish returns it.
type Pending struct {
	// State is the value sent to the provider.
	State string `json:"s"`
	// Verifier is the PKCE code verifier whose S256 challenge went with
	// the authorize request; the code exchange must present it.
	Verifier string `json:"v"`
	// Session is the goth provider session, marshalled.
	Session string `json:"p"`
	// Begun is when the sign-in began, in Unix milliseconds.
	Begun int64 `json:"t"`
}

// NewOAuthStates returns an OAuthStates keyed by secret; secure (an https
// base URL) makes its cookies Secure __Host- cookies.
func NewOAuthStates(secret []byte, secure bool) *OAuthStates {
	return newOAuthStates(secret, secure, time.Now)
}

func newOAuthStates(secret []byte, secure bool, now func() time.Time) *OAuthStates {
	return &OAuthStates{seal: newSealer(secret, "oauth state seal"), secure: secure, prefix: cookieName(OAuthStateCookie, secure), now: now}
}

// NewState returns an unguessable state: 32 random bytes, never anything
// taken from the request.
func NewState() string {
	b := make([]byte, stateBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewVerifier returns a fresh PKCE code verifier (RFC 7636: 32 random
// bytes, base64url).
func NewVerifier() string { return oauth2.GenerateVerifier() }

// Challenge is the S256 code challenge of verifier.
func Challenge(verifier string) string { return oauth2.S256ChallengeFromVerifier(verifier) }

// CookieName is the name of the cookie that holds the sign-in of state.
func (o *OAuthStates) CookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return o.prefix + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// Begin remembers a sign-in for this browser under its state. r is the
// request that begins it: when it already carries maxPending sign-ins,
// the oldest are dropped.
func (o *OAuthStates) Begin(w http.ResponseWriter, r *http.Request, state, verifier, providerSession string) error {
	name := o.CookieName(state)
	v, err := o.seal.seal(name, Pending{State: state, Verifier: verifier, Session: providerSession, Begun: o.now().UnixMilli()})
	if err != nil {
		return err
	}
	o.dropOldest(w, r)
	http.SetCookie(w, o.cookie(name, v, int(oauthStateLifetime/time.Second)))
	return nil
}

// dropOldest clears the request's sign-in cookies beyond the newest
// maxPending-1, and any that cannot be read.
func (o *OAuthStates) dropOldest(w http.ResponseWriter, r *http.Request) {
	type held struct {
		name  string
		begun int64
	}
	var all []held
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, o.prefix) {
			continue
		}
		var p Pending
		if o.seal.open(c.Name, c.Value, &p) != nil {
			http.SetCookie(w, o.cookie(c.Name, "", -1))
			continue
		}
		all = append(all, held{c.Name, p.Begun})
	}
	slices.SortFunc(all, func(a, b held) int { return int(b.begun - a.begun) })
	for i, h := range all {
		if i >= maxPending-1 {
			http.SetCookie(w, o.cookie(h.name, "", -1))
		}
	}
}

// Finish finds the sign-in of the callback's state in this browser and
// returns it. Only that sign-in's cookie is cleared (whatever the outcome,
// so a state is good for one callback); a state this browser does not hold
// touches nothing.
func (o *OAuthStates) Finish(w http.ResponseWriter, r *http.Request, state string) (Pending, error) {
	if len(state) != base64.RawURLEncoding.EncodedLen(stateBytes) {
		return Pending{}, ErrStateMismatch
	}
	name := o.CookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return Pending{}, ErrStateMismatch
	}
	http.SetCookie(w, o.cookie(name, "", -1))
	return o.Decode(name, c.Value, state)
}

// Decode opens the sign-in cookie called name and checks it belongs to
// state and has not expired.
func (o *OAuthStates) Decode(name, value, state string) (Pending, error) {
	var p Pending
	if err := o.seal.open(name, value, &p); err != nil {
		return Pending{}, ErrStateMismatch
	}
	if p.State == "" || subtle.ConstantTimeCompare([]byte(p.State), []byte(state)) != 1 || p.Verifier == "" {
		return Pending{}, ErrStateMismatch
	}
	begun := time.UnixMilli(p.Begun)
	if now := o.now(); !now.Before(begun.Add(oauthStateLifetime)) || begun.After(now.Add(clockSkew)) {
		return Pending{}, ErrStateMismatch
	}
	return p, nil
}

func (o *OAuthStates) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   o.secure,
		SameSite: http.SameSiteLaxMode,
	}
}
