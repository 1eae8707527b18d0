package handlers_test

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestDevSignInThroughItsOwnForm(t *testing.T) {
	e := startDev(t, nil)
	c := browser(t)

	_, body := get(t, c, e.url+"/")
	if !strings.Contains(body, `id="dev-banner"`) {
		t.Error("dev mode home has no banner")
	}
	authURL := e.beginSignIn(c)
	if !strings.HasPrefix(authURL.String(), e.url+"/dev/github/login/oauth/authorize") {
		t.Fatalf("dev sign-in goes to %s, want the built-in provider", authURL)
	}
	resp, body := get(t, c, authURL.String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="dev-banner"`) || !strings.Contains(body, `for="login"`) {
		t.Fatalf("dev form: %d, want a labelled form with the banner", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("the dev form, which echoes request fields, lost the app's CSP: %q", csp)
	}

	e.devSignIn(c, "grace-hopper")
	_, body = get(t, c, e.url+"/")
	for _, want := range []string{`id="user-name"`, "grace-hopper", `id="dev-banner"`, `id="user-count"`} {
		if !strings.Contains(body, want) {
			t.Errorf("signed-in dev home lacks %q", want)
		}
	}
	// The generated avatar is served locally.
	m := regexp.MustCompile(`id="avatar"[^>]*src="([^"]+)"|src="([^"]+)"[^>]*id="avatar"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no avatar on the page")
	}
	src := m[1] + m[2]
	if !strings.HasPrefix(src, e.url+"/dev/github/") && !strings.HasPrefix(src, "/dev/github/") {
		t.Fatalf("dev avatar %q is not served by headcount", src)
	}
	if !strings.HasPrefix(src, "http") {
		src = e.url + src
	}
	resp, body = get(t, c, src)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(body, "GH") {
		t.Errorf("avatar: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	s := e.stream(c)
	mustLast(t, "1", s)
}

func TestDevSignInSessionsDoNotSurviveARestart(t *testing.T) {
	first := startDev(t, nil)
	c := browser(t)
	first.devSignIn(c, "ada")
	token := first.token(c)
	second := startDev(t, nil) // a new random secret
	if resp, _ := get(t, &http.Client{}, second.url+"/api/count", "Authorization", "Bearer "+token); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a token from another dev run: %d, want 401", resp.StatusCode)
	}
}

func TestDevSignInOnIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	ln.Close()
	e := startDev(t, map[string]string{"HEADCOUNT_ADDR": "[::1]:0", "HEADCOUNT_BASE_URL": "http://[::1]:1"})
	// The base URL's port is not the listener's: reach it by address.
	e.url = "http://" + e.srv.Addr().String()
	c := browser(t)
	authURL := e.beginSignIn(c)
	q := authURL.Query()
	form := url.Values{"login": {"six"}, "state": {q.Get("state")}, "client_id": {q.Get("client_id")}, "redirect_uri": {q.Get("redirect_uri")}}
	resp, body := do(t, c, http.MethodPost, e.url+"/dev/github/login/oauth/authorize", strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dev authorize POST: %d: %s", resp.StatusCode, body)
	}
	cb, _ := url.Parse(resp.Header.Get("Location"))
	resp, body = get(t, c, e.url+cb.RequestURI())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback on [::1]: %d: %s", resp.StatusCode, body)
	}
}

func TestNotFoundPages(t *testing.T) {
	e := start(t, nil)
	c := &http.Client{}
	resp, body := get(t, c, e.url+"/no/such/page")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "<!doctype html>") || !strings.Contains(body, "Page not found") {
		t.Errorf("unknown page: %d, want the 404 page", resp.StatusCode)
	}
	resp, body = get(t, c, e.url+"/api/nothing")
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("unknown API route: %d %q %s, want JSON 404", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := get(t, c, e.url+"/static/../go.mod"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("static path traversal: %d", resp.StatusCode)
	}
	if resp, _ := get(t, c, e.url+"/dev/github/login/oauth/authorize"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the dev provider is served with GitHub configured: %d", resp.StatusCode)
	}
}

func TestStaticFilesAreCached(t *testing.T) {
	e := start(t, nil)
	c := &http.Client{}
	_, page := get(t, c, e.url+"/")
	m := regexp.MustCompile(`href="(/static/style\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the page links no hashed style.css")
	}
	resp, body := get(t, c, e.url+m[1])
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || resp.Header.Get("ETag") == "" || body == "" {
		t.Fatalf("hashed asset: %d, Cache-Control %q, ETag %q", resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css Content-Type %q", resp.Header.Get("Content-Type"))
	}
	resp, _ = get(t, c, e.url+"/static/style.css", "If-None-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with the ETag: %d, want 304", resp.StatusCode)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := start(t, nil)
	resp, _ := get(t, &http.Client{}, e.url+"/")
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	// The fake GitHub is a plain-http "Enterprise": its avatars may load.
	if !strings.Contains(csp, "img-src 'self' https: data: "+strings.TrimSuffix(e.gh.URL, "/")) {
		t.Errorf("CSP %q does not allow avatars from the configured GitHub %s", csp, e.gh.URL)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Error("missing nosniff or frame headers")
	}
}

func TestOversizedAndOddRequestsAre4xx(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	e.signIn(c, alice)
	big := strings.Repeat("x", 64<<10)
	if resp, _ := do(t, c, http.MethodPost, e.url+"/logout", strings.NewReader(big), "Content-Type", "application/x-www-form-urlencoded"); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("64 KiB POST /logout: %d, want 413", resp.StatusCode)
	}
	if resp, _ := do(t, c, http.MethodDelete, e.url+"/events", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /events: %d, want 405", resp.StatusCode)
	}
	if resp, _ := get(t, browser(t), e.url+"/events", "Authorization", "Basic YWxpY2U6eA=="); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic auth without a session on /events: %d, want 401", resp.StatusCode)
	}
	if resp, _ := get(t, c, e.url+"/", "Cookie", "headcount_session="+strings.Repeat("A", 8000)); resp.StatusCode != http.StatusOK {
		t.Errorf("huge cookie on /: %d, want the signed-out page", resp.StatusCode)
	}
}
