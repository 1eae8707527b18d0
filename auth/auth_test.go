package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestTokensExpire(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	tok := newTokens(testSecret, time.Hour, clock)
	u := User{ID: "7", Login: "ada"}
	s, exp, err := tok.Issue(u)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(time.Hour)) {
		t.Errorf("expires %v, want %v", exp, now.Add(time.Hour))
	}
	if got, err := tok.Verify(s); err != nil || got != u {
		t.Fatalf("fresh token: %v %+v", err, got)
	}
	now = now.Add(time.Hour + time.Second)
	if _, err := tok.Verify(s); err == nil {
		t.Fatal("an expired token was accepted")
	}
}

func TestTokensAreTiedToTheirSecretAndPurpose(t *testing.T) {
	tok := NewTokens(testSecret, time.Hour)
	s, _, _ := tok.Issue(User{ID: "7", Login: "ada"})
	if _, err := NewTokens([]byte(strings.Repeat("z", 32)), time.Hour).Verify(s); err == nil {
		t.Error("a token from another secret was accepted")
	}
	// A session cookie value is not a token, nor the other way round.
	rec := httptest.NewRecorder()
	sess := NewSessions(testSecret, false)
	sess.Set(rec, User{ID: "7", Login: "ada"})
	if _, err := tok.Verify(rec.Result().Cookies()[0].Value); err == nil {
		t.Error("a session cookie was accepted as a token")
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: s})
	if _, err := sess.Get(r); err == nil {
		t.Error("a token was accepted as a session cookie")
	}
}

func TestExpiredSessionCookieIsRefused(t *testing.T) {
	sess := NewSessions(testSecret, false)
	rec := httptest.NewRecorder()
	u := User{ID: "7", Login: "ada"}
	if err := sess.Set(rec, u); err != nil {
		t.Fatal(err)
	}
	fresh := rec.Result().Cookies()[0].Value
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: fresh})
	if got, err := sess.Get(r); err != nil || got != u {
		t.Fatalf("fresh cookie: %v %+v", err, got)
	}

	// Re-date the cookie to eight days ago and sign it again with the real
	// hash key: only the lifetime check can refuse it now.
	old := backdate(t, fresh, time.Now().Add(-8*24*time.Hour))
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: old})
	if _, err := sess.Get(r); err == nil {
		t.Fatal("an eight-day-old session was accepted")
	}
	// The same re-dating to six days ago is still good, so the refusal
	// above was the lifetime and not a broken signature.
	recent := backdate(t, fresh, time.Now().Add(-6*24*time.Hour))
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: recent})
	if _, err := sess.Get(r); err != nil {
		t.Fatalf("a six-day-old session was refused: %v", err)
	}
}

// backdate rewrites a securecookie value's timestamp and re-signs it with
// the session hash key (securecookie's format: base64(date|value|mac),
// mac over name|date|value).
func backdate(t *testing.T, value string, at time.Time) string {
	t.Helper()
	raw, err := base64.URLEncoding.DecodeString(value)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 {
		t.Fatalf("unexpected cookie format")
	}
	body := fmt.Sprintf("%s|%d|%s", SessionCookie, at.Unix(), parts[1])
	mac := hmac.New(sha256.New, deriveKey(testSecret, "session hash", 64))
	mac.Write([]byte(body))
	b := []byte(fmt.Sprintf("%d|%s|", at.Unix(), parts[1]))
	b = append(b, mac.Sum(nil)...)
	return base64.URLEncoding.EncodeToString(b)
}

func TestOAuthStateIsOneUseAndBrowserBound(t *testing.T) {
	states := NewOAuthStates(testSecret, true)
	state := NewState()
	rec := httptest.NewRecorder()
	if err := states.Begin(rec, state, `{"AuthURL":"x"}`); err != nil {
		t.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	if c.Path != "/auth" || c.MaxAge != 600 || !c.Secure || !c.HttpOnly {
		t.Errorf("state cookie %+v", c)
	}
	finish := func(cookie *http.Cookie, state string) (string, *http.Cookie, error) {
		r := httptest.NewRequest(http.MethodGet, "/auth/github/callback", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		sess, err := states.Finish(rec, r, state)
		return sess, rec.Result().Cookies()[0], err
	}
	if _, _, err := finish(c, "other"); err != ErrStateMismatch {
		t.Errorf("wrong state: %v", err)
	}
	if _, _, err := finish(nil, state); err != ErrStateMismatch {
		t.Errorf("no cookie: %v", err)
	}
	if _, _, err := finish(c, ""); err != ErrStateMismatch {
		t.Errorf("empty state: %v", err)
	}
	sess, cleared, err := finish(c, state)
	if err != nil || sess != `{"AuthURL":"x"}` {
		t.Fatalf("right state: %q %v", sess, err)
	}
	if cleared.MaxAge >= 0 {
		t.Error("Finish did not clear the state cookie")
	}
	if a, b := NewState(), NewState(); a == b || len(a) < 43 {
		t.Errorf("states %q %q: want distinct, 32 random bytes", a, b)
	}
}

func TestTokensWithOurKeyButWrongClaimsAreRefused(t *testing.T) {
	now := time.Now()
	tok := newTokens(testSecret, time.Hour, func() time.Time { return now })
	key := deriveKey(testSecret, "bearer token", 32)
	good := jwt.MapClaims{"iss": tokenIssuer, "aud": tokenAudience, "sub": "7", "login": "ada", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	sign := func(m jwt.SigningMethod, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	if _, err := tok.Verify(sign(jwt.SigningMethodHS256, good)); err != nil {
		t.Fatalf("the well-formed token was refused: %v", err)
	}
	for name, token := range map[string]string{
		"another audience": sign(jwt.SigningMethodHS256, with("aud", "somebody-else")),
		"no audience":      sign(jwt.SigningMethodHS256, with("aud", nil)),
		"another issuer":   sign(jwt.SigningMethodHS256, with("iss", "somebody-else")),
		"no expiry":        sign(jwt.SigningMethodHS256, with("exp", nil)),
		"expired":          sign(jwt.SigningMethodHS256, with("exp", now.Add(-time.Minute).Unix())),
		"issued later":     sign(jwt.SigningMethodHS256, with("iat", now.Add(time.Hour).Unix())),
		"no subject":       sign(jwt.SigningMethodHS256, with("sub", nil)),
		"HS512":            sign(jwt.SigningMethodHS512, good),
	} {
		if _, err := tok.Verify(token); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
