package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/fakegithub"
	"github.com/headcount/headcount/internal/testserver"
)

// Time limits of the tests. Every wait has one; none is a guess at how long
// something takes, only a bound on how long a correct server may.
const (
	// waitTimeout bounds one wait for a condition (a count on a page or
	// a stream, a page to appear).
	waitTimeout = 15 * time.Second
	// closeTimeout bounds the server's graceful stop.
	closeTimeout = 5 * time.Second
)

// The fake GitHub's OAuth app.
const (
	githubClientID     = "headcount-e2e"
	githubClientSecret = "e2e-client-secret"
)

// logBuffer collects the server's log, shown when a test fails. A buffer
// rather than t.Log: a handler may still log after its test has ended.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer starts headcount in-process on a free loopback port with the
// environment env (plus HEADCOUNT_ADDR) and stops it when the test ends.
func startServer(t *testing.T, env map[string]string) *testserver.Server {
	t.Helper()
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	env["HEADCOUNT_ADDR"] = "127.0.0.1:0"
	logs := &logBuffer{}
	// Registered before Start's own cleanup, so it runs after the server
	// has stopped and its log is complete.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return testserver.Start(t, env, testserver.Options{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
}

// startDevServer starts headcount in dev sign-in mode: no GITHUB_KEY, so
// "Sign in with GitHub" leads to the built-in dev provider's form.
func startDevServer(t *testing.T) *testserver.Server {
	t.Helper()
	return startServer(t, nil)
}

// startGitHubServer starts a fake GitHub and headcount signing in against
// it through the real goth GitHub provider.
func startGitHubServer(t *testing.T) (*testserver.Server, *fakegithub.Server) {
	t.Helper()
	gh := fakegithub.Start(t, githubClientID, githubClientSecret)
	srv := startServer(t, map[string]string{
		"GITHUB_KEY":               githubClientID,
		"GITHUB_SECRET":            githubClientSecret,
		"HEADCOUNT_SESSION_SECRET": randomSecret(t),
		"GITHUB_AUTH_URL":          gh.AuthURL(),
		"GITHUB_TOKEN_URL":         gh.TokenURL(),
		"GITHUB_PROFILE_URL":       gh.ProfileURL(),
		"GITHUB_EMAIL_URL":         gh.EmailURL(),
	})
	return srv, gh
}

// randomSecret returns a fresh session secret of 64 hex characters.
func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newClient returns an HTTP client with its own cookie jar and connections
// (closed when the test ends), never going through a proxy: every address
// in these tests is loopback.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr}
}

// devSignIn signs login in on a dev-mode server over plain HTTP, as a
// browser without JavaScript would: follow "Sign in with GitHub" to the dev
// provider's form, post it back with the user name, follow the redirects
// home. The client's jar then holds the session cookie.
func devSignIn(t *testing.T, client *http.Client, base, login string) {
	t.Helper()
	// The dev sign-in form, as templates/dev-authorize.html renders it.
	formActionRE := regexp.MustCompile(`<form[^>]*\saction="([^"]*)"`)
	hiddenInputRE := regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	formURL, body := get(ctx, t, client, base+"/auth/github")
	if !strings.Contains(body, `id="login"`) {
		t.Fatalf("GET /auth/github led to %s, which has no #login field:\n%s", formURL, body)
	}
	m := formActionRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no <form action=...> on the dev sign-in page %s:\n%s", formURL, body)
	}
	action, err := formURL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatalf("form action %q: %v", m[1], err)
	}
	form := url.Values{"login": {login}}
	for _, f := range hiddenInputRE.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	if form.Get("state") == "" {
		t.Fatalf("the dev sign-in form carries no state:\n%s", body)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	home, body := do(t, client, req)
	if home.Path != "/" || !strings.Contains(body, `id="user-name"`) {
		t.Fatalf("posting the dev sign-in form ended at %s, not on the signed-in home page:\n%s", home, body)
	}
}

// newToken asks for a bearer token with the client's session cookie.
func newToken(t *testing.T, client *http.Client, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/token", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body := do(t, client, req)
	var answer struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(body), &answer); err != nil || answer.Token == "" {
		t.Fatalf("POST /api/token answered %q (%v), want {\"token\": ...}", body, err)
	}
	if _, err := time.Parse(time.RFC3339, answer.ExpiresAt); err != nil {
		t.Errorf("POST /api/token: expires_at %q is not RFC 3339: %v", answer.ExpiresAt, err)
	}
	return answer.Token
}

// signInForToken signs login in on a dev-mode server and returns a bearer
// token for command-line clients, as a user copying it would get.
func signInForToken(t *testing.T, srv *testserver.Server, login string) string {
	t.Helper()
	client := newClient(t)
	devSignIn(t, client, srv.URL(), login)
	return newToken(t, client, srv.URL())
}

// get fetches u, following redirects, and wants a 200.
func get(ctx context.Context, t *testing.T, client *http.Client, u string) (*url.URL, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, client, req)
}

// do sends req, following redirects, and wants a 200; it returns where the
// redirects ended and the body.
func do(t *testing.T, client *http.Client, req *http.Request) (*url.URL, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: status %d (at %s), want 200:\n%s", req.Method, req.URL, resp.StatusCode, resp.Request.URL, body)
	}
	return resp.Request.URL, string(body)
}

// waitSubscribers waits until the server itself holds want streams.
func waitSubscribers(t *testing.T, srv *testserver.Server, want int64) {
	t.Helper()
	if err := pollUntil(waitTimeout, func() bool { return srv.Hub().Stats().Subscribers == want }); err != nil {
		t.Fatalf("the server holds %d streams, want %d: %v", srv.Hub().Stats().Subscribers, want, err)
	}
}

// pollUntil checks cond every few milliseconds until it holds or timeout
// passes.
func pollUntil(timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return fmt.Errorf("still not so after %v", timeout)
		case <-tick.C:
		}
	}
	return nil
}
