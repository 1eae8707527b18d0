package auth

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
)

// SessionCookie is the app session's cookie name. goth's own
// `_gothic_session` is never used: sign-in keeps its state in
// OAuthStateCookie instead.
const SessionCookie = "headcount_session"

// SessionLifetime is how long a sign-in lasts.
const SessionLifetime = 7 * 24 * time.Hour

// Sessions reads and writes the app session: a cookie signed and encrypted
// with keys derived from the session secret, so any instance with the same
// secret accepts it.
type Sessions struct {
	codec  *securecookie.SecureCookie
	secure bool
}

// NewSessions returns a Sessions keyed by secret. secure marks cookies
// Secure, for an https base URL.
func NewSessions(secret []byte, secure bool) *Sessions {
	codec := securecookie.New(deriveKey(secret, "session hash", 64), deriveKey(secret, "session block", 32))
	codec.MaxAge(int(SessionLifetime / time.Second))
	codec.SetSerializer(securecookie.JSONEncoder{})
	return &Sessions{codec: codec, secure: secure}
}

// Set starts a session for u.
func (s *Sessions) Set(w http.ResponseWriter, u User) error {
	v, err := s.codec.Encode(SessionCookie, u)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	http.SetCookie(w, s.cookie(v, int(SessionLifetime/time.Second)))
	return nil
}

// Get returns the session's user. ErrNoCredentials means there is no
// session cookie; any other error means a cookie that is forged, tampered
// with, expired or made with another secret.
func (s *Sessions) Get(r *http.Request) (User, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return User{}, ErrNoCredentials
	}
	var u User
	if err := s.codec.Decode(SessionCookie, c.Value, &u); err != nil {
		return User{}, fmt.Errorf("session cookie: %w", err)
	}
	if !u.Valid() {
		return User{}, errors.New("session cookie: no user")
	}
	return u, nil
}

// Clear ends the session in the browser.
func (s *Sessions) Clear(w http.ResponseWriter) {
	http.SetCookie(w, s.cookie("", -1))
}

func (s *Sessions) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	}
}
