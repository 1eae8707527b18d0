package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/devsignin"
	"github.com/headcount/headcount/internal/logbuf"
	"github.com/headcount/headcount/internal/poll"
	"github.com/headcount/headcount/internal/ssetest"
)

// requestTimeout bounds every plain request a test makes.
const requestTimeout = 10 * time.Second

// logBuffer collects what the server logs; it is safe for concurrent use,
// so a test reads it while the server writes.
type logBuffer struct{ logbuf.Buffer }

// records parses every complete line logged so far as an slog text record.
func (l *logBuffer) records() []map[string]string {
	text := l.String()
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	} else {
		return nil
	}
	var recs []map[string]string
	for line := range strings.SplitSeq(text, "\n") {
		recs = append(recs, parseRecord(line))
	}
	return recs
}

// find returns the first record logged with message msg.
func (l *logBuffer) find(msg string) (map[string]string, bool) {
	for _, r := range l.records() {
		if r["msg"] == msg {
			return r, true
		}
	}
	return nil, false
}

// awaitListening waits until log holds the "headcount listening" record
// and returns it. It fails the test if done closes first (the server
// stopped before listening) or the start takes longer than startTimeout;
// output describes what the server wrote, for the failure message (with
// stopped true, its end may be read too: done is closed).
func awaitListening(t *testing.T, log *logBuffer, done <-chan struct{}, output func(stopped bool) string) map[string]string {
	t.Helper()
	var rec map[string]string
	stopped := false
	if err := poll.Until(startTimeout, func() bool {
		select {
		case <-done:
			stopped = true
			return true
		default:
		}
		var ok bool
		rec, ok = log.find("headcount listening")
		return ok
	}); err != nil {
		t.Fatalf("no \"headcount listening\" line within %v; %s", startTimeout, output(false))
	}
	if stopped {
		t.Fatalf("headcount stopped before listening; %s", output(true))
	}
	return rec
}

// parseRecord splits one line of slog's text format into its keys and
// values, unquoting quoted values.
func parseRecord(line string) map[string]string {
	rec := map[string]string{}
	for {
		line = strings.TrimLeft(line, " ")
		key, rest, ok := strings.Cut(line, "=")
		if !ok {
			return rec
		}
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return rec
			}
			rec[key], _ = strconv.Unquote(q)
			line = rest[len(q):]
			continue
		}
		value, rest, _ := strings.Cut(rest, " ")
		rec[key] = value
		line = rest
	}
}

// newClient returns a client for the server listening on addr. It keeps
// cookies, does not follow redirects (so each hop of the sign-in is
// checked), and dials addr whatever host a URL names: the server's URLs say
// localhost, which may resolve to another loopback address first.
func newClient(t *testing.T, addr string) *http.Client {
	t.Helper()
	return newClientTLS(t, addr, nil)
}

// newClientTLS is newClient for a server speaking TLS with tlsConfig
// (nil: plain HTTP), HTTP/2 where the server offers it.
func newClientTLS(t *testing.T, addr string, tlsConfig *tls.Config) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{Timeout: requestTimeout}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:   tlsConfig,
		ForceAttemptHTTP2: tlsConfig != nil,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Jar:           jar,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// fetch sends req, reads the whole answer and returns it with its body.
func fetch(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	defer cancel()
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp, string(body)
}

func newRequest(t *testing.T, method, target string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// expect fails the test unless resp has the status wanted.
func expect(t *testing.T, resp *http.Response, body string, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body: %q", resp.Request.Method, resp.Request.URL, resp.StatusCode, status, body)
	}
}

// signedIn is what a dev sign-in leaves a client with.
type signedIn struct {
	session string // the value of the headcount_session cookie
	token   string // a bearer token from POST /api/token
}

// signIn signs c in as login through dev sign-in mode, the way a browser
// does, and asks for a bearer token.
func signIn(t *testing.T, c *http.Client, base, login string) signedIn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	session, err := devsignin.SignIn(ctx, c, base, login)
	if err != nil {
		t.Fatalf("dev sign-in as %s: %v", login, err)
	}
	tok, err := devsignin.NewToken(ctx, c, base)
	if err != nil {
		t.Fatal(err)
	}
	return signedIn{session: session, token: tok.Token}
}

// countReply is GET /api/count's answer.
type countReply struct {
	UserCount int  `json:"user_count"`
	Partial   bool `json:"partial"`
}

// readCount reads GET /api/count with a bearer token.
func readCount(t *testing.T, c *http.Client, base, token string) countReply {
	t.Helper()
	req := newRequest(t, http.MethodGet, base+"/api/count", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, body := fetch(t, c, req)
	expect(t, resp, body, http.StatusOK)
	var n countReply
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		t.Fatalf("GET /api/count: %q: %v", body, err)
	}
	return n
}

// count reads the user count of GET /api/count with a bearer token.
func count(t *testing.T, c *http.Client, base, token string) int {
	t.Helper()
	return readCount(t, c, base, token).UserCount
}

// sseStream is an open GET /events whose first event has arrived; the
// rest is read in the background until the server ends it.
type sseStream struct {
	*ssetest.Stream
	first int // the count the first event carried
}

// openStream holds GET /events with token and waits for its first event.
func openStream(t *testing.T, c *http.Client, base, token string) *sseStream {
	t.Helper()
	s, err := ssetest.Open(t, c, base+"/events", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	if ct := s.Response.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("GET /events: Content-Type %q, want text/event-stream", ct)
	}
	err = s.Wait(requestTimeout, func(events []ssetest.Event, _ []string, _ bool) bool { return len(events) > 0 })
	if err != nil {
		t.Fatalf("GET /events: no first event: %v", err)
	}
	ev := s.Events()[0]
	first, err := strconv.Atoi(ev.Data)
	if ev.Event != "user count" || err != nil {
		t.Fatalf("GET /events: first event %+v is not a user count", ev)
	}
	return &sseStream{Stream: s, first: first}
}

// waitEnded waits until every stream has ended, by the server, before
// deadline.
func waitEnded(t *testing.T, streams []*sseStream, deadline time.Time) {
	t.Helper()
	for i, s := range streams {
		if err := s.WaitEnd(time.Until(deadline)); err != nil {
			t.Fatalf("stream %d (and maybe later ones) still open at the deadline: %v", i, err)
		}
		// A clean end of the response (its closing chunk), so curl and
		// browsers see a finished stream, not a cut connection.
		if _, why := s.Ended(); why != ssetest.ErrEnded {
			t.Errorf("stream %d ended with %v, want a clean end of the response", i, why)
		}
	}
}
