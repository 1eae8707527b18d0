package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fuzzStart is the fixed moment the fuzz targets' seeds were sealed at,
// so a committed corpus entry stays valid whatever today's date.
var fuzzStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// FuzzSessionCookie feeds arbitrary Cookie header values to the session
// reader. It must never panic, and it may accept only what this server
// sealed: an accepted session names a user within the profile limits and
// seals back to a value that decodes to the same session.
func FuzzSessionCookie(f *testing.F) {
	c := &clock{t: fuzzStart.Add(time.Hour)}
	sessions := newSessions(testSecret, false, c.now)
	good, err := sessions.Encode(Session{ID: "AAAAAAAAAAAAAAAAAAAAAA", User: ada, Start: fuzzStart.UnixMilli()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(SessionCookie + "=" + good)
	f.Add(SessionCookie + "=" + good[:len(good)-1])
	f.Add(SessionCookie + "=" + good + "; " + SessionCookie + "=x")
	f.Add(SessionCookie + "=" + strings.Repeat("A", 5000))
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", header)
		sess, err := sessions.Get(r)
		if err != nil {
			return
		}
		if !sess.valid() || sess.User.Cut() != sess.User {
			t.Fatalf("accepted a session outside the rules: %+v", sess)
		}
		v, err := sessions.Encode(sess)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := sessions.Decode(v); err != nil || again != sess {
			t.Fatalf("an accepted session does not round-trip: %+v %v", again, err)
		}
	})
}

// FuzzBearerToken feeds arbitrary Authorization header values to the
// bearer parser and the token checker. Neither may panic; a header that is
// not Bearer yields no token; an accepted token names a valid session and
// was signed with this server's key for this purpose.
func FuzzBearerToken(f *testing.F) {
	c := &clock{t: fuzzStart.Add(time.Minute)}
	tok := newTokens(testSecret, time.Hour, c.now)
	issuer := newTokens(testSecret, time.Hour, func() time.Time { return fuzzStart })
	good, _, err := issuer.Issue(Session{ID: "AAAAAAAAAAAAAAAAAAAAAA", User: ada, Start: fuzzStart.UnixMilli()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("Bearer " + good)
	f.Add("bearer  " + good + " ")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiI3In0.")
	f.Add("Bearer " + strings.Repeat("a.", 3000))
	f.Fuzz(func(t *testing.T, header string) {
		token, ok := Bearer(header)
		if !ok {
			if token != "" {
				t.Fatalf("no bearer, yet token %q", token)
			}
			return
		}
		if !IsBearer(header) {
			t.Fatalf("Bearer took a token from %q, which IsBearer refuses", header)
		}
		sess, err := tok.Verify(token)
		if err != nil {
			return
		}
		if !sess.valid() {
			t.Fatalf("accepted a token without a session: %+v", sess)
		}
		if _, err := NewTokens([]byte(strings.Repeat("z", 32)), time.Hour).Verify(token); err == nil {
			t.Fatal("a token was accepted under two keys")
		}
	})
}
