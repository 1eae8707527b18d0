package handlers_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/internal/devsignin"
	"github.com/headcount/headcount/internal/fakegithub"
	"github.com/headcount/headcount/internal/poll"
	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/internal/testserver"
	"github.com/headcount/headcount/stream"
)

const (
	testClientID     = "test-client"
	testClientSecret = "test-client-secret"
	testSecret       = "0123456789abcdef0123456789abcdef-test"
	waitTime         = 5 * time.Second
)

// env is one headcount server, started in-process on a free port, and the
// fake GitHub it signs people in with (nil in dev sign-in mode).
type env struct {
	t   testing.TB
	srv *testserver.Server
	gh  *fakegithub.Server
	url string
}

// start runs a server signing in against a fake GitHub; vars override the
// environment it is configured from.
func start(t testing.TB, vars map[string]string, opts ...testserver.Options) *env {
	t.Helper()
	return startCounting(t, vars, nil, opts...)
}

// startCounting is start with the count kept in counter (nil: memory).
func startCounting(t testing.TB, vars map[string]string, counter stream.Counter, opts ...testserver.Options) *env {
	t.Helper()
	gh := fakegithub.Start(t, testClientID, testClientSecret)
	all := map[string]string{
		"HEADCOUNT_ADDR":           "127.0.0.1:0",
		"HEADCOUNT_SESSION_SECRET": testSecret,
		"GITHUB_KEY":               testClientID,
		"GITHUB_SECRET":            testClientSecret,
		"GITHUB_AUTH_URL":          gh.AuthURL(),
		"GITHUB_TOKEN_URL":         gh.TokenURL(),
		"GITHUB_PROFILE_URL":       gh.ProfileURL(),
		"GITHUB_EMAIL_URL":         gh.EmailURL(),
	}
	for k, v := range vars {
		all[k] = v
	}
	e := startWith(t, all, counter, opts...)
	e.gh = gh
	return e
}

// startDev runs a server in dev sign-in mode.
func startDev(t testing.TB, vars map[string]string) *env {
	t.Helper()
	all := map[string]string{"HEADCOUNT_ADDR": "127.0.0.1:0"}
	for k, v := range vars {
		all[k] = v
	}
	return startWith(t, all, nil)
}

func startWith(t testing.TB, vars map[string]string, counter stream.Counter, opts ...testserver.Options) *env {
	t.Helper()
	o := testserver.Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Counter = counter
	srv := testserver.Start(t, vars, o)
	return &env{t: t, srv: srv, url: srv.URL()}
}

// browser is an HTTP client with its own cookie jar that does not follow
// redirects, so tests see every step.
func browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{},
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// get fetches url and returns the response with its body read.
func get(t testing.TB, c *http.Client, url string, header ...string) (*http.Response, string) {
	t.Helper()
	return do(t, c, http.MethodGet, url, nil, header...)
}

// do sends a request; header holds name, value pairs.
func do(t testing.TB, c *http.Client, method, url string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(b)
}

// beginSignIn starts a sign-in and returns the provider's authorize URL.
func (e *env) beginSignIn(c *http.Client) *url.URL {
	e.t.Helper()
	resp, _ := get(e.t, c, e.url+"/auth/github")
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("GET /auth/github: status %d", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// authorize plays the browser at the fake GitHub: it follows the authorize
// URL and returns the callback URL GitHub sends the browser back to.
func (e *env) authorize(c *http.Client, authURL *url.URL) string {
	e.t.Helper()
	resp, _ := get(e.t, c, authURL.String())
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("fake GitHub authorize: status %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// signIn walks the whole GitHub flow for u in browser c.
func (e *env) signIn(c *http.Client, u fakegithub.User) {
	e.t.Helper()
	e.gh.SignIn(u)
	callback := e.authorize(c, e.beginSignIn(c))
	resp, body := get(e.t, c, callback)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		e.t.Fatalf("callback: status %d, location %q, body %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// devSignIn walks the dev identity provider's flow as login in browser c.
func (e *env) devSignIn(c *http.Client, login string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if _, err := devsignin.SignIn(ctx, c, e.url, login); err != nil {
		e.t.Fatalf("dev sign-in as %s: %v", login, err)
	}
}

// token gets a bearer token with browser c's session.
func (e *env) token(c *http.Client) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	tok, err := devsignin.NewToken(ctx, c, e.url)
	if err != nil {
		e.t.Fatalf("POST /api/token: %v", err)
	}
	return tok.Token
}

// stream opens /events with c and the given header pairs.
func (e *env) stream(c *http.Client, header ...string) *ssetest.Stream {
	e.t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	s, err := ssetest.Open(e.t, c, e.url+"/events", h)
	if err != nil {
		e.t.Fatalf("open stream: %v", err)
	}
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := poll.Until(waitTime, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// stateCookie returns the sign-in state cookie a response set or
// cleared (the one of its sign-in: each has its own name).
func stateCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(strings.TrimPrefix(c.Name, auth.HostPrefix), auth.OAuthStateCookie) {
			return c
		}
	}
	return nil
}

// cookie returns the named cookie from a response's Set-Cookie headers.
func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var alice = fakegithub.User{ID: 1001, Login: "alice", Name: "Alice Liddell", AvatarURL: "https://avatars.example/1001", Email: "alice@example.com"}
var bob = fakegithub.User{ID: 1002, Login: "bob", Name: "", AvatarURL: "https://avatars.example/1002"}
