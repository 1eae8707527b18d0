package handlers_test

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/internal/fakegithub"
	"github.com/headcount/headcount/internal/redistest"
	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/internal/testserver"
	"github.com/headcount/headcount/stream/redis"
)

// revokeWithin is the SPEC's bound for a sign-out to end the streams of
// the session.
const revokeWithin = 2 * time.Second

// sessionCookie is browser c's session cookie for the server at e.
func (e *env) sessionCookie(c *http.Client) *http.Cookie {
	e.t.Helper()
	for _, ck := range c.Jar.Cookies(mustURL(e.t, e.url)) {
		if ck.Name == auth.SessionCookie {
			return ck
		}
	}
	e.t.Fatal("the browser holds no session cookie")
	return nil
}

// withCookie is a browser holding a copy of ck for e, as an attacker who
// stole it would.
func (e *env) withCookie(ck *http.Cookie) *http.Client {
	c := browser(e.t)
	c.Jar.SetCookies(mustURL(e.t, e.url), []*http.Cookie{{Name: ck.Name, Value: ck.Value}})
	return c
}

func (e *env) logout(c *http.Client, form string) {
	e.t.Helper()
	resp, body := do(e.t, c, http.MethodPost, e.url+"/logout", strings.NewReader(form),
		"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("POST /logout: %d %s", resp.StatusCode, body)
	}
}

// wantStatus fails the test unless GET path with header answers status.
func (e *env) wantStatus(c *http.Client, method, path string, status int, what string, header ...string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if method == http.MethodPost {
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	resp.Body.Close()
	if resp.StatusCode != status {
		e.t.Errorf("%s: %s %s answered %d, want %d", what, method, path, resp.StatusCode, status)
	}
}

// TestOnlyBearerAuthorizationIsJudgedByItsBearer: a proxy's Basic (or any
// other scheme) beside a session cookie leaves the cookie to decide; a
// Bearer beside it decides alone.
func TestOnlyBearerAuthorizationIsJudgedByItsBearer(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	e.signIn(c, alice)
	for _, h := range []string{"Basic YWxpY2U6eA==", "Digest username=\"x\"", "Negotiate abc", "Bearerish x"} {
		e.wantStatus(c, http.MethodGet, "/api/count", http.StatusOK, h+" beside a session", "Authorization", h)
		e.wantStatus(c, http.MethodPost, "/api/token", http.StatusOK, h+" beside a session", "Authorization", h)
		s, err := ssetest.Open(t, c, e.url+"/events", http.Header{"Authorization": {h}})
		if err != nil {
			t.Fatalf("/events with %s beside a session: %v", h, err)
		}
		mustLast(t, "1", s)
		s.Close()
	}
	for _, h := range []string{"Bearer not-a-token", "bearer", "Bearer "} {
		e.wantStatus(c, http.MethodGet, "/api/count", http.StatusUnauthorized, "a bad bearer beside a good session", "Authorization", h)
	}
}

// TestLogoutRevokesTheSession: after POST /logout, a copy of the cookie
// and every token minted from it are 401, and the streams they hold end
// within two seconds.
func TestLogoutRevokesTheSession(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	e.signIn(c, alice)
	stolen := e.withCookie(e.sessionCookie(c))
	token := e.token(c)
	other := browser(t) // alice's other browser: a session of its own
	e.signIn(other, alice)

	byCookie := e.stream(stolen)
	byToken := e.stream(browser(t), "Authorization", "Bearer "+token)
	bystander := e.stream(other)
	mustLast(t, "3", byCookie, byToken, bystander)

	e.logout(c, "")
	for name, s := range map[string]*ssetest.Stream{"the copied cookie's": byCookie, "the token's": byToken} {
		if err := s.WaitEnd(revokeWithin); err != nil {
			t.Errorf("%s stream is still open %v after logout", name, revokeWithin)
		}
	}
	e.wantStatus(stolen, http.MethodGet, "/api/count", http.StatusUnauthorized, "the copied cookie")
	e.wantStatus(stolen, http.MethodPost, "/api/token", http.StatusUnauthorized, "the copied cookie minting a token")
	e.wantStatus(stolen, http.MethodGet, "/events", http.StatusUnauthorized, "the copied cookie")
	e.wantStatus(browser(t), http.MethodGet, "/events", http.StatusUnauthorized, "the token", "Authorization", "Bearer "+token)
	if _, body := get(t, stolen, e.url+"/"); !strings.Contains(body, `id="sign-in"`) {
		t.Error("the home page still shows the copied cookie signed in")
	}
	// Alice's other session is hers to end.
	mustLast(t, "1", bystander)
	e.wantStatus(other, http.MethodGet, "/api/count", http.StatusOK, "alice's other session")
}

// TestSignOutEverywhere ends every session of the account, and no one
// else's; signing in again afterwards works.
func TestSignOutEverywhere(t *testing.T) {
	e := start(t, nil)
	one, two, bobs := browser(t), browser(t), browser(t)
	e.signIn(one, alice)
	e.signIn(two, alice)
	e.signIn(bobs, bob)
	// A copy of one's cookie, kept by someone else: signed out with the
	// rest below, it must not sign anyone out afterwards.
	stale := e.withCookie(e.sessionCookie(one))
	token := e.token(two)
	sTwo := e.stream(two)
	sToken := e.stream(browser(t), "Authorization", "Bearer "+token)
	sBob := e.stream(bobs)
	mustLast(t, "3", sTwo, sToken, sBob)

	_, page := get(t, one, e.url+"/")
	if !strings.Contains(page, `id="sign-out-everywhere"`) {
		t.Fatal("the page has no Sign out everywhere button")
	}
	e.logout(one, "everywhere=1")
	for _, s := range []*ssetest.Stream{sTwo, sToken} {
		if err := s.WaitEnd(revokeWithin); err != nil {
			t.Errorf("a stream of alice's is still open %v after signing out everywhere", revokeWithin)
		}
	}
	e.wantStatus(two, http.MethodGet, "/api/count", http.StatusUnauthorized, "alice's other browser")
	e.wantStatus(bobs, http.MethodGet, "/api/count", http.StatusOK, "bob")
	mustLast(t, "1", sBob)

	again := browser(t)
	e.signIn(again, alice)
	e.wantStatus(again, http.MethodGet, "/api/count", http.StatusOK, "alice signed in again")
	e.logout(stale, "everywhere=1")
	e.wantStatus(again, http.MethodGet, "/api/count", http.StatusOK, "alice's new session, after a signed-out copy of an old cookie asked to sign out everywhere")
}

// TestLogoutRevokesOnEveryInstance: with Redis, a sign-out on one instance
// is refused, and its streams ended, on the other.
func TestLogoutRevokesOnEveryInstance(t *testing.T) {
	r := redistest.Start(t) // a Redis of the test's own
	onRedis := func() *env {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		counter, err := redis.New(ctx, r.URL(), redis.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return startCounting(t, map[string]string{"HEADCOUNT_REDIS_URL": r.URL()}, counter)
	}
	a, b := onRedis(), onRedis()
	ca := browser(t)
	a.signIn(ca, alice)
	onB := b.withCookie(a.sessionCookie(ca))
	token := a.token(ca)
	sCookie := b.stream(onB)
	sToken := b.stream(browser(t), "Authorization", "Bearer "+token)
	mustLast(t, "2", sCookie, sToken)

	a.logout(ca, "")
	for _, s := range []*ssetest.Stream{sCookie, sToken} {
		if err := s.WaitEnd(revokeWithin); err != nil {
			t.Errorf("a stream on the other instance is still open %v after logout", revokeWithin)
		}
	}
	b.wantStatus(onB, http.MethodGet, "/api/count", http.StatusUnauthorized, "the cookie on the other instance")
	b.wantStatus(browser(t), http.MethodGet, "/api/count", http.StatusUnauthorized, "the token on the other instance", "Authorization", "Bearer "+token)
}

// TestPKCEStopsALeakedCode: a victim's unused code, taken to the callback
// with the attacker's own state, signs nobody in: the exchange carries the
// attacker's verifier, which the code was not issued for.
func TestPKCEStopsALeakedCode(t *testing.T) {
	e := start(t, nil)
	victim, attacker := browser(t), browser(t)
	e.gh.SignIn(alice)
	leaked, _ := url.Parse(e.authorize(victim, e.beginSignIn(victim)))
	if e.gh.LastChallenge() == "" {
		t.Fatal("the authorize request carried no PKCE code_challenge")
	}
	e.gh.SignIn(bob)
	own, _ := url.Parse(e.authorize(attacker, e.beginSignIn(attacker)))
	q := own.Query()
	q.Set("code", leaked.Query().Get("code"))
	own.RawQuery = q.Encode()
	resp, _ := get(t, attacker, own.String())
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback with a leaked code and the attacker's state: %d, want 400", resp.StatusCode)
	}
	if ck := cookie(resp, auth.SessionCookie); ck != nil && ck.MaxAge >= 0 {
		t.Fatal("the attacker got a session")
	}
	e.wantStatus(attacker, http.MethodGet, "/api/count", http.StatusUnauthorized, "the attacker")
}

// TestParallelSignInsBothSucceed: two tabs signing in at once each keep
// their own state, and a cross-site link to the callback (an unknown
// state, or ?error=) cancels neither.
func TestParallelSignInsBothSucceed(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	e.gh.SignIn(alice)
	first := e.authorize(c, e.beginSignIn(c))
	second := e.authorize(c, e.beginSignIn(c))
	for _, crafted := range []string{"/auth/github/callback?error=access_denied", "/auth/github/callback?error=access_denied&state=" + auth.NewState(),
		"/auth/github/callback?code=x&state=" + auth.NewState(), "/auth/github/callback"} {
		resp, _ := get(t, c, e.url+crafted)
		if resp.StatusCode/100 != 4 {
			t.Errorf("GET %s: %d, want 4xx", crafted, resp.StatusCode)
		}
		if sc := stateCookie(resp); sc != nil {
			t.Errorf("GET %s touched the sign-in cookie %s", crafted, sc.Name)
		}
	}
	for i, callback := range []string{second, first} {
		resp, body := get(t, c, callback)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %d of two in parallel: %d %s", i+1, resp.StatusCode, body)
		}
	}
}

// TestDevSignInRefusesProxiedRequests: a reverse proxy in front of a
// loopback dev server does not open dev sign-in to its public.
func TestDevSignInRefusesProxiedRequests(t *testing.T) {
	e := startDev(t, nil)
	c := browser(t)
	for _, h := range [][]string{
		{"X-Forwarded-For", "203.0.113.9"},
		{"X-Forwarded-Host", "headcount.example"},
		{"X-Forwarded-Proto", "https"},
		{"Forwarded", "for=203.0.113.9;host=headcount.example"},
		{"X-Real-Ip", "203.0.113.9"},
		{"Via", "1.1 proxy"},
		{"Host", "headcount.example"},
		{"Host", "localhost:1"},
		{"Origin", "https://headcount.example"},
		{"Referer", "https://headcount.example/"},
	} {
		for _, path := range []string{"/auth/github", "/dev/github/login/oauth/authorize?client_id=headcount-dev", "/auth/github/callback?code=x&state=y"} {
			req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
			if h[0] == "Host" {
				req.Host = h[1]
			} else {
				req.Header.Set(h[0], h[1])
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("GET %s with %s: %s: %d, want 403", path, h[0], h[1], resp.StatusCode)
			}
		}
	}
	// Directly, and with HEADCOUNT_DEV_LOGIN=1 even through a proxy, it works.
	e.devSignIn(c, "ada")
	open := startDev(t, map[string]string{"HEADCOUNT_DEV_LOGIN": "1"})
	if resp, _ := get(t, browser(t), open.url+"/auth/github", "X-Forwarded-For", "203.0.113.9"); resp.StatusCode != http.StatusFound {
		t.Errorf("HEADCOUNT_DEV_LOGIN=1 through a proxy: %d, want 302", resp.StatusCode)
	}
}

// TestAProfileOfAnySizeSignsIn: a long name and avatar URL (each <
// costs six bytes in escaped JSON) used to push the cookie past 4 KB and
// the callback to 500.
func TestAProfileOfAnySizeSignsIn(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	huge := fakegithub.User{ID: 1003, Login: strings.Repeat("l", 39), Name: strings.Repeat("<", 5000),
		AvatarURL: "https://avatars.example/" + strings.Repeat("a", 2000)}
	e.gh.SignIn(huge)
	resp, body := get(t, c, e.authorize(c, e.beginSignIn(c)))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback for a long profile: %d %s", resp.StatusCode, body)
	}
	ck := cookie(resp, auth.SessionCookie)
	if ck == nil || len(ck.String()) >= 4096 {
		t.Fatalf("session cookie %d bytes, want under 4096", len(ck.String()))
	}
	_, page := get(t, c, e.url+"/")
	if !strings.Contains(page, strings.Repeat("&lt;", auth.MaxNameRunes)) || strings.Contains(page, strings.Repeat("&lt;", auth.MaxNameRunes+1)) {
		t.Error("the page does not show the name cut to its limit")
	}
	e.wantStatus(c, http.MethodGet, "/api/count", http.StatusOK, "the long profile's session")
}

// TestTheCurlCommandIsSafeToPaste: a base URL with shell syntax in it is
// quoted, so pasting the command runs nothing but curl.
func TestTheCurlCommandIsSafeToPaste(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	base := "http://127.0.0.1:9/x$(echo%20INJECTED)`echo`'q'"
	e := start(t, map[string]string{"HEADCOUNT_BASE_URL": base})
	c := browser(t)
	e.gh.SignIn(alice)
	// The base URL is not where the server listens: take each redirect
	// back to the real address.
	real := "http://" + e.srv.Addr().String()
	loc, _ := get(t, c, real+"/auth/github")
	authURL, _ := url.Parse(loc.Header.Get("Location"))
	callback := atReal(t, e.authorize(c, authURL), real)
	if resp, body := get(t, c, callback); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	_, page := get(t, c, real+"/")
	m := regexp.MustCompile(`<code id="curl-command">([^<]*)</code>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no curl command on the page")
	}
	cmd := html.UnescapeString(m[1])
	args, ok := strings.CutPrefix(cmd, "curl ")
	if !ok {
		t.Fatalf("command %q", cmd)
	}
	out, err := exec.Command(sh, "-c", `printf '[%s]\n' `+args).CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v %s", err, out)
	}
	words := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(words) != 4 || words[3] != "["+base+"/events]" || !strings.HasPrefix(words[2], "[Authorization: Bearer ") {
		t.Fatalf("the shell reads the command %q as %q", cmd, words)
	}
}

// TestHostCookiesAndHSTSUnderHTTPS: under an https base URL every cookie,
// the state cookie included, is a __Host- cookie (Secure, Path=/, no
// Domain), and every response carries Strict-Transport-Security.
func TestHostCookiesAndHSTSUnderHTTPS(t *testing.T) {
	// The fake GitHub sends browsers only to loopback hosts.
	e := start(t, map[string]string{"HEADCOUNT_BASE_URL": "https://127.0.0.1:9"})
	real := "http://" + e.srv.Addr().String()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	e.gh.SignIn(alice)
	resp, _ := get(t, c, real+"/auth/github")
	state := stateCookie(resp)
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	resp, _ = get(t, c, authURL.String())
	callback := atReal(t, resp.Header.Get("Location"), real)
	resp, body := get(t, c, callback, "Cookie", state.Name+"="+state.Value)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	for _, ck := range append([]*http.Cookie{state}, resp.Cookies()...) {
		if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("cookie under https: %s (Secure %v, Path %q, Domain %q), want a __Host- cookie", ck.Name, ck.Secure, ck.Path, ck.Domain)
		}
	}
	for _, path := range []string{"/", "/healthz", "/nowhere", "/auth/github"} {
		resp, _ := get(t, c, real+path)
		if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
			t.Errorf("GET %s under https: Strict-Transport-Security %q", path, got)
		}
	}
	plain := start(t, nil)
	if resp, _ := get(t, c, plain.url+"/"); resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("Strict-Transport-Security over a plain http base URL")
	}
}

// TestSlowlorisCannotTakeTheHeadroom: connections that hold no stream
// have a cap of their own; a stream does not count against it.
func TestSlowlorisCannotTakeTheHeadroom(t *testing.T) {
	const max = 4
	e := start(t, nil, testserver.Options{MaxOtherConns: max})
	c := browser(t)
	e.signIn(c, alice)
	c.CloseIdleConnections()
	s := e.stream(browser(t), "Authorization", "Bearer "+e.token(c))
	mustLast(t, "1", s)
	c.CloseIdleConnections()
	waitFor(t, "the sign-in's connections to close", func() bool { return e.srv.OtherConns() == 0 })

	var held []net.Conn
	for range max {
		conn := dialHalf(t, e)
		held = append(held, conn)
	}
	waitFor(t, "the half-sent requests to be counted", func() bool { return e.srv.OtherConns() == max })
	over := dialHalf(t, e)
	over.SetReadDeadline(time.Now().Add(waitTime))
	if _, err := bufio.NewReader(over).ReadByte(); err == nil {
		t.Fatal("a connection past the cap got an answer")
	}
	// The stream is still served, and room comes back as others leave.
	mustLast(t, "1", s)
	held[0].Close()
	waitFor(t, "room for one more", func() bool { return e.srv.OtherConns() == max-1 })
	e.wantStatus(&http.Client{}, http.MethodGet, "/healthz", http.StatusOK, "a health check once there is room")
	// The metrics say so: one refused, and the connections the cap counts:
	// the two still held, the scrape's own, and the health check's if it
	// is kept alive.
	held[1].Close()
	waitFor(t, "room for the scrape", func() bool { return e.srv.OtherConns() < max })
	least, most := len(held)-2+1, len(held)-2+2
	_, body := get(t, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, e.url+"/metrics")
	if !strings.Contains(body, "headcount_connections_refused_total 1\n") {
		t.Errorf("/metrics lacks headcount_connections_refused_total 1")
	}
	var open int
	if m := regexp.MustCompile(`(?m)^headcount_connections_without_stream (\d+)$`).FindStringSubmatch(body); m == nil {
		t.Errorf("/metrics lacks headcount_connections_without_stream")
	} else if fmt.Sscan(m[1], &open); open < least || open > most {
		t.Errorf("headcount_connections_without_stream %d, want %d to %d", open, least, most)
	}
}

// atReal is the callback URL the provider sent the browser to, at the
// address the server really listens on rather than its base URL.
func atReal(t *testing.T, callback, real string) string {
	t.Helper()
	u, err := url.Parse(callback)
	if err != nil || !strings.HasSuffix(u.Path, "/auth/github/callback") {
		t.Fatalf("callback %q", callback)
	}
	return real + "/auth/github/callback?" + u.RawQuery
}

// dialHalf opens a connection and sends half a request, as slowloris does.
func dialHalf(t *testing.T, e *env) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", e.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestASignOutDuringARedisOutage: made while the instance cannot reach
// Redis, a sign-out holds at once where it was made, and reaches the other
// instance (its answers and its streams) once Redis answers again.
func TestASignOutDuringARedisOutage(t *testing.T) {
	r := redistest.Start(t)
	relay := redistest.NewProxy(t, r.Addr)
	onRedis := func(rawURL string) *env {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		counter, err := redis.New(ctx, rawURL, redis.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return startCounting(t, map[string]string{"HEADCOUNT_REDIS_URL": rawURL}, counter)
	}
	a, b := onRedis("redis://"+relay.Addr()), onRedis(r.URL())
	ca := browser(t)
	a.signIn(ca, alice)
	onB := b.withCookie(a.sessionCookie(ca))
	sB := b.stream(onB)
	mustLast(t, "1", sB)

	relay.SetCut(true)
	a.logout(ca, "")
	a.wantStatus(a.withCookie(a.sessionCookie(onB)), http.MethodGet, "/api/count", http.StatusUnauthorized, "the session where it was signed out, during the outage")
	b.wantStatus(onB, http.MethodGet, "/api/count", http.StatusOK, "the session on the other instance, before it can know")

	relay.SetCut(false)
	if err := sB.WaitEnd(waitTime); err != nil {
		t.Fatalf("the other instance's stream is still open %v after Redis answered again", waitTime)
	}
	b.wantStatus(onB, http.MethodGet, "/api/count", http.StatusUnauthorized, "the session on the other instance, once Redis answered")
}
