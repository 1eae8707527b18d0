package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// SessionCookie is the app session's cookie name over plain http; under
// https it is HostPrefix + SessionCookie. goth's own `_gothic_session` is
// never used: sign-in keeps its state in cookies of its own.
const SessionCookie = "headcount_session"

// HostPrefix starts the name of every cookie set under https. A browser
// takes a __Host- cookie only from a secure origin, with Path=/ and no
// Domain, so a sibling subdomain can neither set nor shadow it.
const HostPrefix = "__Host-"

// cookieName is the name of the cookie (or cookie prefix) base: with
// HostPrefix when secure (an https base URL).
func cookieName(base string, secure bool) string {
	if secure {
		return HostPrefix + base
	}
	return base
}

// SessionLifetime is how long a sign-in lasts.
const SessionLifetime = 7 * 24 * time.Hour

// clockSkew is how far in the future a session's start may lie, for
// instances whose clocks disagree a little.
const clockSkew = time.Minute

// maxCookieLen is the longest session cookie Set writes: a browser keeps
// 4,096 bytes of name and value, and the attributes need some of that.
const maxCookieLen = 3900

// Session is one sign-in: who, since when, and the id that names it in a
// revocation. A bearer token carries the id and start of the session that
// minted it, so revoking the session revokes the token.
type Session struct {
	// ID is 128 random bits, base64url: the session's name.
	ID string `json:"sid"`
	// User is who signed in.
	User User `json:"u"`
	// Start is when the session began, in Unix milliseconds.
	Start int64 `json:"iat"`
}

// StartedAt is when s began.
func (s Session) StartedAt() time.Time { return time.UnixMilli(s.Start) }

// Expires is when s ends of itself.
func (s Session) Expires() time.Time { return s.StartedAt().Add(SessionLifetime) }

// valid reports whether s names a user and a session.
func (s Session) valid() bool {
	return s.User.Valid() && len(s.ID) == sessionIDLen && s.Start > 0
}

const sessionIDLen = 22 // 16 bytes, base64url without padding

// NewSession starts a session for u at now; u is Cut first.
func NewSession(u User, now time.Time) Session {
	b := make([]byte, 16)
	rand.Read(b)
	return Session{ID: base64.RawURLEncoding.EncodeToString(b), User: u.Cut(), Start: now.UnixMilli()}
}

// Sessions reads and writes the app session: a cookie sealed with a key
// derived from the session secret, so any instance with the same secret
// accepts it.
type Sessions struct {
	seal   sealer
	secure bool
	name   string
	now    func() time.Time
}

// NewSessions returns a Sessions keyed by secret. secure (an https base
// URL) makes the cookie Secure and names it with HostPrefix.
func NewSessions(secret []byte, secure bool) *Sessions {
	return newSessions(secret, secure, time.Now)
}

func newSessions(secret []byte, secure bool, now func() time.Time) *Sessions {
	return &Sessions{seal: newSealer(secret, "session seal"), secure: secure, name: cookieName(SessionCookie, secure), now: now}
}

// Set writes sess's cookie. A profile too long for a cookie even after
// Cut loses its avatar, then its name: signing in never fails for size.
func (s *Sessions) Set(w http.ResponseWriter, sess Session) error {
	sess.User = sess.User.Cut()
	v, err := s.Encode(sess)
	if err == nil && len(v) > maxCookieLen {
		sess.User.AvatarURL = ""
		v, err = s.Encode(sess)
	}
	if err == nil && len(v) > maxCookieLen {
		sess.User.Name = ""
		v, err = s.Encode(sess)
	}
	if err != nil {
		return err
	}
	http.SetCookie(w, s.cookie(v, int(sess.Expires().Sub(s.now()).Round(time.Second)/time.Second)))
	return nil
}

// Encode returns the cookie value of sess.
func (s *Sessions) Encode(sess Session) (string, error) {
	v, err := s.seal.seal(s.name, sess)
	if err != nil {
		return "", fmt.Errorf("encode session: %w", err)
	}
	return v, nil
}

// Decode returns the session a cookie value holds. Any error means a value
// that is forged, tampered with, expired, from the future or made with
// another secret or for another cookie name.
func (s *Sessions) Decode(value string) (Session, error) {
	var sess Session
	if err := s.seal.open(s.name, value, &sess); err != nil {
		return Session{}, fmt.Errorf("session cookie: %w", err)
	}
	if !sess.valid() {
		return Session{}, errors.New("session cookie: no user")
	}
	now := s.now()
	if !now.Before(sess.Expires()) {
		return Session{}, errors.New("session cookie: expired")
	}
	if sess.StartedAt().After(now.Add(clockSkew)) {
		return Session{}, errors.New("session cookie: starts in the future")
	}
	return sess, nil
}

// Get returns the request's session. ErrNoCredentials means there is no
// session cookie; any other error is Decode's.
func (s *Sessions) Get(r *http.Request) (Session, error) {
	c, err := r.Cookie(s.name)
	if err != nil {
		return Session{}, ErrNoCredentials
	}
	return s.Decode(c.Value)
}

// Clear ends the session in the browser.
func (s *Sessions) Clear(w http.ResponseWriter) {
	http.SetCookie(w, s.cookie("", -1))
}

func (s *Sessions) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	}
}
