package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/devsignin"
	"github.com/headcount/headcount/internal/fakegithub"
	"github.com/headcount/headcount/internal/logbuf"
	"github.com/headcount/headcount/internal/poll"
	"github.com/headcount/headcount/internal/testserver"
)

// Time limits of the tests. Every wait has one; none is a guess at how long
// something takes, only a bound on how long a correct server may.
const (
	// waitTimeout bounds one wait for a condition (a count on a page or
	// a stream, a page to appear).
	waitTimeout = 15 * time.Second
	// closeTimeout bounds how long a stream client run as a child process
	// may take to leave once told to.
	closeTimeout = 5 * time.Second
)

// The fake GitHub's OAuth app.
const (
	githubClientID     = "headcount-e2e"
	githubClientSecret = "e2e-client-secret"
)

// startServer starts headcount in-process on a free loopback port with the
// environment env (plus HEADCOUNT_ADDR) and stops it when the test ends.
func startServer(t *testing.T, env map[string]string) *testserver.Server {
	t.Helper()
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	env["HEADCOUNT_ADDR"] = "127.0.0.1:0"
	logs := &logbuf.Buffer{}
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

// signInForToken signs login in on a dev-mode server, as a browser
// without JavaScript would, checks that it ends on the signed-in page, and
// returns a bearer token for command-line clients, as a user copying it
// would get.
func signInForToken(t *testing.T, srv *testserver.Server, login string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	client := newClient(t)
	if _, err := devsignin.SignIn(ctx, client, srv.URL(), login); err != nil {
		t.Fatalf("dev sign-in as %s: %v", login, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="user-name"`) {
		t.Fatalf("after signing in, GET / is not the signed-in home page (status %d, %v):\n%s", resp.StatusCode, err, body)
	}
	tok, err := devsignin.NewToken(ctx, client, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// waitSubscribers waits until the server itself holds want streams.
func waitSubscribers(t *testing.T, srv *testserver.Server, want int64) {
	t.Helper()
	if err := poll.Until(waitTimeout, func() bool { return srv.Hub().Stats().Subscribers == want }); err != nil {
		t.Fatalf("the server holds %d streams, want %d: %v", srv.Hub().Stats().Subscribers, want, err)
	}
}
