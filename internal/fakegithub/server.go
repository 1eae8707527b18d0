// Package fakegithub is a test double of github.com's OAuth endpoints and
// user API, for tests that point headcount's real goth GitHub provider at
// something they control. It answers as GitHub does, status codes, content
// types and error bodies included, and shares no code with devgithub: a
// fake built from the product's own code would agree with the product's
// mistakes.
package fakegithub

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// codeTTL is how long GitHub honours an authorization code.
const codeTTL = 10 * time.Minute

// Server is a fake github.com serving OAuth and the user API on a loopback
// port. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:43567".
	URL string

	tb           testing.TB
	srv          *httptest.Server
	clientID     string
	clientSecret string

	mu            sync.Mutex
	user          User
	deny          bool
	profileStatus int
	skew          time.Duration // added to the wall clock, so tests can age codes
	codes         map[string]grant
	tokens        map[string]grant
	requests      map[string]int
	lastChallenge string
}

// grant is what a code or token stands for.
type grant struct {
	user        User
	scopes      []string
	redirectURI string
	challenge   string    // codes only: the PKCE S256 challenge, if any
	expires     time.Time // codes only
}

// Start starts a fake GitHub that knows one OAuth app, clientID with
// clientSecret, and has the user octocat signed in. tb's cleanup closes it.
//
// The fake has no registered callback URL, so authorize requests must
// carry redirect_uri, and it must be on a loopback host: a browser under
// test is never sent off the machine.
func Start(tb testing.TB, clientID, clientSecret string) *Server {
	tb.Helper()
	s := &Server{
		tb:           tb,
		clientID:     clientID,
		clientSecret: clientSecret,
		codes:        map[string]grant{},
		tokens:       map[string]grant{},
		requests:     map[string]int{},
	}
	s.srv = httptest.NewServer(s.routes())
	s.URL = s.srv.URL
	s.user = s.complete(User{ID: 583231, Login: "octocat", Name: "The Octocat"})
	tb.Cleanup(s.srv.Close)
	return s
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", s.serveAuthorize)
	mux.HandleFunc("POST /login/oauth/access_token", s.serveAccessToken)
	mux.HandleFunc("GET /user", s.serveUser)
	mux.HandleFunc("GET /user/emails", s.serveEmails)
	mux.HandleFunc("GET /avatars/u/{id}", s.serveAvatar)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.URL.Path]++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
}

// AuthURL is GitHub's authorize endpoint on this server.
func (s *Server) AuthURL() string { return s.URL + "/login/oauth/authorize" }

// TokenURL is GitHub's token endpoint on this server.
func (s *Server) TokenURL() string { return s.URL + "/login/oauth/access_token" }

// ProfileURL is the API's authenticated-user endpoint; one server plays
// both github.com and api.github.com.
func (s *Server) ProfileURL() string { return s.URL + "/user" }

// EmailURL is the API's email-list endpoint.
func (s *Server) EmailURL() string { return s.URL + "/user/emails" }

// SignIn makes u the user the browser is signed in to GitHub as: every
// later authorize request is approved for u until the next SignIn. Zero
// fields get GitHub-like defaults (see User). Call it from the test's
// goroutine: a user without ID or Login fails the test.
func (s *Server) SignIn(u User) {
	s.tb.Helper()
	if u.ID <= 0 || u.Login == "" {
		s.tb.Fatalf("fakegithub: SignIn needs a positive ID and a Login, got %+v", u)
	}
	u = s.complete(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = u
}

// Deny makes authorize requests answer error=access_denied, as when the
// user clicks Cancel on GitHub's consent page, until Deny(false).
func (s *Server) Deny(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = deny
}

// FailProfile makes GET /user answer status with GitHub's error body; 0
// restores normal answers.
func (s *Server) FailProfile(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.profileStatus = status
}

// Requests reports how many requests path (e.g. "/user") has received,
// whatever their method or outcome.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// LastChallenge is the PKCE code_challenge of the latest authorize
// request, "" when it carried none.
func (s *Server) LastChallenge() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastChallenge
}

// Close stops the server now, for tests of GitHub being unreachable. It
// may be called more than once; tb's cleanup calls it again.
func (s *Server) Close() { s.srv.Close() }

// nowLocked is the fake's clock: the wall clock plus any skew a test
// added. The caller holds s.mu.
func (s *Server) nowLocked() time.Time { return time.Now().Add(s.skew) }

// randomString returns n characters drawn from alphabet.
func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails, per crypto/rand
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
