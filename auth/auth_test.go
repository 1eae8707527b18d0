package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

var ada = User{ID: "7", Login: "ada", Name: "Ada Lovelace"}

// clock is a settable time for tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func TestTokensExpire(t *testing.T) {
	c := newClock()
	tok := newTokens(testSecret, time.Hour, c.now)
	sess := NewSession(ada, c.t)
	s, exp, err := tok.Issue(sess)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(c.t.Add(time.Hour)) {
		t.Errorf("expires %v, want %v", exp, c.t.Add(time.Hour))
	}
	if got, err := tok.Verify(s); err != nil || got != sess {
		t.Fatalf("fresh token: %v %+v, want %+v", err, got, sess)
	}
	c.t = c.t.Add(time.Hour + time.Second)
	if _, err := tok.Verify(s); err == nil {
		t.Fatal("an expired token was accepted")
	}
}

// TestTokensHaveOneSpelling: a token whose signature's last character
// differs only in the bits base64 leaves unused decodes to the same
// signature; it is refused, and so is any other change to the signature.
func TestTokensHaveOneSpelling(t *testing.T) {
	tok := NewTokens(testSecret, time.Hour)
	s, _, err := tok.Issue(NewSession(ada, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	// HS256 signs 32 bytes: 43 characters, of which the last carries 4
	// bits and 2 unused ones.
	for unused := 1; unused < 4; unused++ {
		v := s[:len(s)-1] + string(alphabet[last|unused])
		if _, err := tok.Verify(v); err == nil {
			t.Errorf("the token with its last character %q for %q was accepted", v[len(v)-1], s[len(s)-1])
		}
	}
	i := strings.LastIndexByte(s, '.') + 1
	for _, c := range []byte("AB") {
		if v := s[:i] + string(c) + s[i+1:]; v != s {
			if _, err := tok.Verify(v); err == nil {
				t.Errorf("a token with its signature's first character changed to %q was accepted", c)
			}
		}
	}
	if _, err := tok.Verify(s); err != nil {
		t.Fatalf("the token itself: %v", err)
	}
}

func TestTokensNeverOutliveTheirSession(t *testing.T) {
	c := newClock()
	sess := NewSession(ada, c.t)
	c.t = sess.Expires().Add(-10 * time.Minute)
	_, exp, err := newTokens(testSecret, time.Hour, c.now).Issue(sess)
	if err != nil {
		t.Fatal(err)
	}
	if exp.After(sess.Expires()) {
		t.Fatalf("a token minted ten minutes before its session ends expires %v, after the session (%v)", exp, sess.Expires())
	}
}

func TestTokensAreTiedToTheirSecretAndPurpose(t *testing.T) {
	tok := NewTokens(testSecret, time.Hour)
	sess := NewSession(ada, time.Now())
	s, _, _ := tok.Issue(sess)
	if _, err := NewTokens([]byte(strings.Repeat("z", 32)), time.Hour).Verify(s); err == nil {
		t.Error("a token from another secret was accepted")
	}
	// A session cookie value is not a token, nor the other way round.
	sessions := NewSessions(testSecret, false)
	v, err := sessions.Encode(sess)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Verify(v); err == nil {
		t.Error("a session cookie was accepted as a token")
	}
	if _, err := sessions.Decode(s); err == nil {
		t.Error("a token was accepted as a session cookie")
	}
	// Nor is a cookie sealed for http accepted under its https name.
	if _, err := NewSessions(testSecret, true).Decode(v); err == nil {
		t.Error("a cookie sealed under another name was accepted")
	}
}

func TestExpiredSessionCookieIsRefused(t *testing.T) {
	c := newClock()
	sessions := newSessions(testSecret, false, c.now)
	sess := NewSession(ada, c.t)
	v, err := sessions.Encode(sess)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sessions.Decode(v); err != nil || got != sess {
		t.Fatalf("fresh cookie: %v %+v", err, got)
	}
	c.t = sess.StartedAt().Add(SessionLifetime - time.Second)
	if _, err := sessions.Decode(v); err != nil {
		t.Fatalf("a session a second short of its lifetime was refused: %v", err)
	}
	c.t = sess.Expires()
	if _, err := sessions.Decode(v); err == nil {
		t.Fatal("a session at the end of its lifetime was accepted")
	}
	c.t = sess.StartedAt().Add(-2 * clockSkew)
	if _, err := sessions.Decode(v); err == nil {
		t.Fatal("a session that starts in the future was accepted")
	}
}

func TestSessionCookieUnderHTTPSIsAHostCookie(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := NewSessions(testSecret, true).Set(rec, NewSession(ada, time.Now())); err != nil {
		t.Fatal(err)
	}
	ck := rec.Result().Cookies()[0]
	if ck.Name != "__Host-headcount_session" || !ck.Secure || ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie under https: %+v", ck)
	}
}

// TestAnyProfileFitsInTheCookie: a profile with hostile lengths (each <
// costs six bytes in HTML-escaped JSON) signs in with a cookie a browser
// keeps.
func TestAnyProfileFitsInTheCookie(t *testing.T) {
	huge := User{
		ID:        "12345678901234567890",
		Login:     strings.Repeat("x", 39),
		Name:      strings.Repeat("<\u4e16\"\\", 5000),
		AvatarURL: "https://avatars.example/" + strings.Repeat("%3C", 674), // 2,046 bytes
	}
	for _, secure := range []bool{false, true} {
		rec := httptest.NewRecorder()
		sessions := NewSessions(testSecret, secure)
		sess := NewSession(huge, time.Now())
		if err := sessions.Set(rec, sess); err != nil {
			t.Fatalf("Set: %v", err)
		}
		ck := rec.Result().Cookies()[0]
		if n := len(ck.Name) + len(ck.Value); n >= 4096 {
			t.Fatalf("cookie name and value are %d bytes; a browser keeps at most 4096", n)
		}
		got, err := sessions.Decode(ck.Value)
		if err != nil {
			t.Fatal(err)
		}
		if got.User.Login != huge.Login || len([]rune(got.User.Name)) > MaxNameRunes || len(got.User.AvatarURL) > MaxAvatarURLLen {
			t.Fatalf("cut profile: login %q, name %d runes, avatar %d bytes", got.User.Login, len([]rune(got.User.Name)), len(got.User.AvatarURL))
		}
	}
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		in, want User
	}{
		{User{ID: "1", Login: "ada", Name: " Ada\x00\n ", AvatarURL: "https://a.example/x.png"}, User{ID: "1", Login: "ada", Name: "Ada", AvatarURL: "https://a.example/x.png"}},
		{User{ID: "1x", Login: "ada"}, User{Login: "ada"}},
		{User{ID: "1", Login: strings.Repeat("a", 40)}, User{ID: "1"}},
		{User{ID: "1", Login: "a b"}, User{ID: "1"}},
		{User{ID: "1", Login: "ada", AvatarURL: "javascript:alert(1)"}, User{ID: "1", Login: "ada"}},
		{User{ID: "1", Login: "ada", AvatarURL: "https://a.example/" + strings.Repeat("a", 2048)}, User{ID: "1", Login: "ada"}},
		{User{ID: "1", Login: "ada", AvatarURL: "https://user:pw@a.example/"}, User{ID: "1", Login: "ada"}},
		{User{ID: "1", Login: "ada", Name: strings.Repeat("é", 150)}, User{ID: "1", Login: "ada", Name: strings.Repeat("é", 100)}},
	} {
		if got := tc.in.Cut(); got != tc.want {
			t.Errorf("Cut(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestOAuthStateIsOneUseAndBrowserBound(t *testing.T) {
	states := NewOAuthStates(testSecret, true)
	state, verifier := NewState(), NewVerifier()
	rec := httptest.NewRecorder()
	if err := states.Begin(rec, httptest.NewRequest(http.MethodGet, "/auth/github", nil), state, verifier, `{"AuthURL":"x"}`); err != nil {
		t.Fatal(err)
	}
	c := rec.Result().Cookies()[0]
	if !strings.HasPrefix(c.Name, "__Host-headcount_oauth_") || c.Path != "/" || c.MaxAge != 600 || !c.Secure || !c.HttpOnly {
		t.Errorf("state cookie %+v", c)
	}
	finish := func(cookie *http.Cookie, state string) (Pending, []*http.Cookie, error) {
		r := httptest.NewRequest(http.MethodGet, "/auth/github/callback", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		p, err := states.Finish(rec, r, state)
		return p, rec.Result().Cookies(), err
	}
	for name, st := range map[string]string{"another state": NewState(), "empty": "", "garbage": "x<>"} {
		_, set, err := finish(c, st)
		if err != ErrStateMismatch {
			t.Errorf("%s: %v", name, err)
		}
		if len(set) != 0 {
			t.Errorf("%s: a callback for a state this browser does not hold touched cookies: %v", name, set)
		}
	}
	if _, _, err := finish(nil, state); err != ErrStateMismatch {
		t.Errorf("no cookie: %v", err)
	}
	p, set, err := finish(c, state)
	if err != nil || p.Session != `{"AuthURL":"x"}` || p.Verifier != verifier {
		t.Fatalf("right state: %+v %v", p, err)
	}
	if len(set) != 1 || set[0].Name != c.Name || set[0].MaxAge >= 0 {
		t.Errorf("Finish did not clear its own cookie: %v", set)
	}
	// A cookie copied under another state's name does not open there.
	other := NewState()
	if _, err := states.Decode(states.CookieName(other), c.Value, other); err == nil {
		t.Error("a state cookie was accepted under another state's name")
	}
	if a, b := NewState(), NewState(); a == b || len(a) < 43 {
		t.Errorf("states %q %q: want distinct, 32 random bytes", a, b)
	}
}

func TestParallelSignInsKeepTheirOwnCookies(t *testing.T) {
	c := newClock()
	states := newOAuthStates(testSecret, false, c.now)
	req := httptest.NewRequest(http.MethodGet, "/auth/github", nil)
	var names []string
	for i := range maxPending + 2 {
		c.t = c.t.Add(time.Second)
		rec := httptest.NewRecorder()
		if err := states.Begin(rec, req, NewState(), NewVerifier(), "p"); err != nil {
			t.Fatal(err)
		}
		for _, ck := range rec.Result().Cookies() {
			if ck.MaxAge < 0 {
				req = dropCookie(req, ck.Name)
				continue
			}
			req.AddCookie(ck)
			names = append(names, ck.Name)
		}
		if n := len(req.Cookies()); n > maxPending {
			t.Fatalf("after %d sign-ins the browser holds %d state cookies, want at most %d", i+1, n, maxPending)
		}
	}
	// The newest are the ones kept.
	kept := map[string]bool{}
	for _, ck := range req.Cookies() {
		kept[ck.Name] = true
	}
	for _, n := range names[len(names)-maxPending:] {
		if !kept[n] {
			t.Errorf("the newer sign-in %s was dropped", n)
		}
	}
}

func dropCookie(r *http.Request, name string) *http.Request {
	out := httptest.NewRequest(r.Method, r.URL.String(), nil)
	for _, ck := range r.Cookies() {
		if ck.Name != name {
			out.AddCookie(ck)
		}
	}
	return out
}

func TestTokensWithOurKeyButWrongClaimsAreRefused(t *testing.T) {
	now := time.Now()
	tok := newTokens(testSecret, time.Hour, func() time.Time { return now })
	key := DeriveKey(testSecret, "bearer token", 32)
	sess := NewSession(ada, now)
	good := jwt.MapClaims{"iss": tokenIssuer, "aud": tokenAudience, "sub": "7", "login": "ada", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "sid": sess.ID, "sat": sess.Start}
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
		"no session":       sign(jwt.SigningMethodHS256, with("sid", nil)),
		"no session start": sign(jwt.SigningMethodHS256, with("sat", nil)),
		"HS512":            sign(jwt.SigningMethodHS512, good),
		"too long":         sign(jwt.SigningMethodHS256, with("name", strings.Repeat("n", maxTokenLen))),
	} {
		if _, err := tok.Verify(token); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		header, token string
		ok, isBearer  bool
	}{
		{"Bearer abc", "abc", true, true},
		{"bearer  abc ", "abc", true, true},
		{"BEARER abc", "abc", true, true},
		{"Bearer", "", false, true},
		{"Bearer ", "", false, true},
		{"Basic dXNlcjpwYXNz", "", false, false},
		{"Bearerabc", "", false, false},
		{"Digest username=x", "", false, false},
		{"", "", false, false},
	} {
		token, ok := Bearer(tc.header)
		if token != tc.token || ok != tc.ok || IsBearer(tc.header) != tc.isBearer {
			t.Errorf("%q: Bearer = %q, %v; IsBearer = %v; want %q, %v, %v", tc.header, token, ok, IsBearer(tc.header), tc.token, tc.ok, tc.isBearer)
		}
	}
}

func TestRevocations(t *testing.T) {
	c := newClock()
	l := newRevocations(c.now)
	one := NewSession(ada, c.t)
	c.t = c.t.Add(time.Second)
	two := NewSession(ada, c.t)
	bob := NewSession(User{ID: "8", Login: "bob"}, c.t)

	ctxOne, stopOne := l.Watch(context.Background(), one)
	defer stopOne()
	ctxTwo, stopTwo := l.Watch(context.Background(), two)
	defer stopTwo()
	ctxBob, stopBob := l.Watch(context.Background(), bob)
	defer stopBob()

	if !l.Learn(RevokeSession(one)) || l.Learn(RevokeSession(one)) {
		t.Error("Learn did not tell news from a repeat")
	}
	if !l.Revoked(one) || l.Revoked(two) || l.Revoked(bob) {
		t.Fatalf("after revoking one session: %v %v %v", l.Revoked(one), l.Revoked(two), l.Revoked(bob))
	}
	if !errors.Is(context.Cause(ctxOne), ErrRevoked) || ctxTwo.Err() != nil || ctxBob.Err() != nil {
		t.Fatalf("watches after revoking one session: %v %v %v", context.Cause(ctxOne), ctxTwo.Err(), ctxBob.Err())
	}

	// Sign out everywhere: every session of ada so far, none of bob's, and
	// none that ada starts afterwards.
	l.Learn(RevokeUser(ada.ID, c.t))
	if !l.Revoked(two) || l.Revoked(bob) {
		t.Fatalf("after revoking ada everywhere: %v %v", l.Revoked(two), l.Revoked(bob))
	}
	if !errors.Is(context.Cause(ctxTwo), ErrRevoked) || ctxBob.Err() != nil {
		t.Fatal("the user-wide revocation did not end ada's watch alone")
	}
	c.t = c.t.Add(time.Millisecond)
	if later := NewSession(ada, c.t); l.Revoked(later) {
		t.Fatal("a session begun after sign-out-everywhere is revoked")
	}
	// An already revoked session is cancelled the moment it is watched.
	ctx, stop := l.Watch(context.Background(), one)
	if ctx.Err() == nil {
		t.Error("watching a revoked session did not end at once")
	}
	stop()
	stopOne()
	stopTwo()
	stopBob()
	if n := l.Watching(); n != 0 {
		t.Errorf("%d watches left after every stop", n)
	}

	// Kept only while the sessions could live.
	c.t = c.t.Add(SessionLifetime + 2*sweepEvery)
	l.Learn(RevokeSession(NewSession(ada, c.t)))
	if n := l.Len(); n != 1 {
		t.Errorf("after a lifetime, %d revocations are kept, want 1 (the new one)", n)
	}
	if l.Learn(Revocation{Session: "short", Expires: c.t.Add(time.Hour).UnixMilli()}) || l.Learn(RevokeSession(one)) {
		t.Error("an invalid or already expired revocation was learnt")
	}
}
