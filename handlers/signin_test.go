package handlers_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/internal/fakegithub"
)

func TestGitHubSignInWalksTheWholeFlow(t *testing.T) {
	e := start(t, nil)
	c := browser(t)

	resp, body := get(t, c, e.url+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="sign-in"`) || !strings.Contains(body, "Sign in with GitHub") {
		t.Fatalf("signed-out home: status %d, no sign-in button", resp.StatusCode)
	}
	if strings.Contains(body, `id="dev-banner"`) {
		t.Error("dev banner shown with GitHub configured")
	}

	e.gh.SignIn(alice)
	authURL := e.beginSignIn(c)
	if !strings.HasPrefix(authURL.String(), e.gh.AuthURL()) {
		t.Fatalf("sign-in redirects to %s, want the configured GITHUB_AUTH_URL", authURL)
	}
	q := authURL.Query()
	if q.Get("client_id") != testClientID || q.Get("redirect_uri") != e.url+"/auth/github/callback" {
		t.Errorf("authorize query: %v", q)
	}
	if got := q.Get("scope"); got != "read:user user:email" {
		t.Errorf("scopes %q, want read:user user:email", got)
	}
	state, err := base64.RawURLEncoding.DecodeString(q.Get("state"))
	if err != nil || len(state) < 32 {
		t.Errorf("state %q: want at least 32 random bytes", q.Get("state"))
	}

	callback := e.authorize(c, authURL)
	resp, _ = get(t, c, callback)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("callback: status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	sc := cookie(resp, auth.SessionCookie)
	if sc == nil || sc.Value == "" {
		t.Fatal("callback set no session cookie")
	}
	if !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.Path != "/" || sc.MaxAge != 7*24*3600 {
		t.Errorf("session cookie attributes: %+v", sc)
	}
	if strings.Contains(sc.Value, "alice") {
		t.Error("session cookie is readable: it should be encrypted")
	}
	if oc := stateCookie(resp); oc == nil || oc.MaxAge >= 0 {
		t.Error("callback did not clear the OAuth state cookie")
	}

	_, body = get(t, c, e.url+"/")
	for _, want := range []string{`id="user-name"`, "Alice Liddell", "@alice", `id="user-count"`, `id="sign-out"`, "curl -N -H &#39;Authorization: Bearer ", e.url + "/events", `id="copy-curl"`} {
		if !strings.Contains(body, want) {
			t.Errorf("signed-in home lacks %q", want)
		}
	}
	if e.gh.Requests("/user") != 1 {
		t.Errorf("profile fetched %d times, want 1", e.gh.Requests("/user"))
	}
}

func TestSignInStateIsNeverTakenFromTheRequest(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	resp, _ := get(t, c, e.url+"/auth/github?state=attacker-chosen")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if got := loc.Query().Get("state"); got == "attacker-chosen" || got == "" {
		t.Fatalf("state %q: taken from the request", got)
	}
	oc := stateCookie(resp)
	if oc == nil {
		t.Fatal("no OAuth state cookie")
	}
	if oc.Path != "/" || oc.MaxAge != 600 || !oc.HttpOnly || oc.SameSite != http.SameSiteLaxMode {
		t.Errorf("OAuth state cookie attributes: %+v", oc)
	}
	if oc.Name == "_gothic_session" || cookie(resp, "_gothic_session") != nil {
		t.Error("gothic's session cookie is in use")
	}
	// Two sign-ins never share a state.
	resp2, _ := get(t, c, e.url+"/auth/github")
	loc2, _ := url.Parse(resp2.Header.Get("Location"))
	if loc2.Query().Get("state") == loc.Query().Get("state") {
		t.Error("two sign-ins got the same state")
	}
}

func TestBadCallbacksStartNoSession(t *testing.T) {
	e := start(t, nil)
	e.gh.SignIn(alice)

	// Each case returns the callback URL to visit in browser c.
	cases := []struct {
		name    string
		status  int
		message string
		visit   func(t *testing.T, c *http.Client) string
	}{
		{"wrong state", http.StatusBadRequest, "another browser", func(t *testing.T, c *http.Client) string {
			cb, _ := url.Parse(e.authorize(c, e.beginSignIn(c)))
			q := cb.Query()
			q.Set("state", "not-the-state")
			cb.RawQuery = q.Encode()
			return cb.String()
		}},
		{"missing state", http.StatusBadRequest, "another browser", func(t *testing.T, c *http.Client) string {
			cb, _ := url.Parse(e.authorize(c, e.beginSignIn(c)))
			q := cb.Query()
			q.Del("state")
			cb.RawQuery = q.Encode()
			return cb.String()
		}},
		{"another browser's state", http.StatusBadRequest, "another browser", func(t *testing.T, c *http.Client) string {
			e.beginSignIn(c) // this browser has a sign-in of its own in progress
			other := browser(t)
			return e.authorize(other, e.beginSignIn(other))
		}},
		{"no state cookie at all", http.StatusBadRequest, "another browser", func(t *testing.T, c *http.Client) string {
			return e.url + "/auth/github/callback?code=abc&state=xyz"
		}},
		{"missing code", http.StatusBadRequest, "no authorization code", func(t *testing.T, c *http.Client) string {
			cb, _ := url.Parse(e.authorize(c, e.beginSignIn(c)))
			q := cb.Query()
			q.Del("code")
			cb.RawQuery = q.Encode()
			return cb.String()
		}},
		{"code the provider refuses", http.StatusBadRequest, "did not accept this sign-in code", func(t *testing.T, c *http.Client) string {
			cb, _ := url.Parse(e.authorize(c, e.beginSignIn(c)))
			q := cb.Query()
			q.Set("code", "forged-code")
			cb.RawQuery = q.Encode()
			return cb.String()
		}},
		{"access denied", http.StatusForbidden, "declined", func(t *testing.T, c *http.Client) string {
			e.gh.Deny(true)
			defer e.gh.Deny(false)
			return e.authorize(c, e.beginSignIn(c))
		}},
		{"an error of the provider's", http.StatusBadRequest, "GitHub refused the sign-in.", func(t *testing.T, c *http.Client) string {
			e.beginSignIn(c)
			return e.url + "/auth/github/callback?error=" + url.QueryEscape("Your account is locked, call +1 555 0100") + "&state=x"
		}},
		{"malformed query", http.StatusBadRequest, "another browser", func(t *testing.T, c *http.Client) string {
			return e.url + "/auth/github/callback?state=%zz&code=%"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := browser(t)
			resp, body := get(t, c, tc.visit(t, c))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if !strings.Contains(body, tc.message) || !strings.Contains(body, "<!doctype html>") {
				t.Errorf("page lacks a clear message %q", tc.message)
			}
			if strings.Contains(body, "555 0100") {
				t.Error("the page repeats text from the request")
			}
			if sc := cookie(resp, auth.SessionCookie); sc != nil && sc.MaxAge >= 0 {
				t.Error("a failed callback set a session cookie")
			}
			if resp, _ := get(t, c, e.url+"/api/count"); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("after a failed callback /api/count is %d, want 401", resp.StatusCode)
			}
		})
	}
}

func TestSignInWithoutAVerifiedEmail(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	// A private e-mail and no verified primary address: goth's e-mail
	// lookup fails, but headcount never needed the address.
	e.signIn(c, fakegithub.User{ID: 1010, Login: "quiet", Name: "Quiet One", Emails: []fakegithub.Email{}})
	_, body := get(t, c, e.url+"/")
	if !strings.Contains(body, "Quiet One") {
		t.Error("not signed in after a failed e-mail lookup")
	}
}

func TestCallbackWhenGitHubFails(t *testing.T) {
	t.Run("profile answers 500", func(t *testing.T) {
		e := start(t, nil)
		e.gh.SignIn(alice)
		e.gh.FailProfile(http.StatusInternalServerError)
		c := browser(t)
		resp, body := get(t, c, e.authorize(c, e.beginSignIn(c)))
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "could not read your GitHub profile") {
			t.Fatalf("status %d, want 502 with a clear page", resp.StatusCode)
		}
		if cookie(resp, auth.SessionCookie) != nil {
			t.Error("session started")
		}
	})
	t.Run("token endpoint unreachable", func(t *testing.T) {
		e := start(t, map[string]string{"GITHUB_TOKEN_URL": "http://127.0.0.1:1/login/oauth/access_token"})
		e.gh.SignIn(alice)
		c := browser(t)
		resp, body := get(t, c, e.authorize(c, e.beginSignIn(c)))
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "could not reach GitHub") {
			t.Fatalf("status %d, want 502 with a clear page: %s", resp.StatusCode, body)
		}
		if cookie(resp, auth.SessionCookie) != nil {
			t.Error("session started")
		}
	})
}

func TestAStateIsGoodForOneCallback(t *testing.T) {
	e := start(t, nil)
	e.gh.SignIn(alice)
	c := browser(t)
	callback := e.authorize(c, e.beginSignIn(c))
	if resp, _ := get(t, c, callback); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first callback: %d", resp.StatusCode)
	}
	// Replaying the same callback (say, from history) signs nobody in again.
	other := browser(t)
	if resp, _ := get(t, other, callback); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed callback in another browser: %d, want 400", resp.StatusCode)
	}
}

func TestSecureCookiesUnderHTTPS(t *testing.T) {
	e := start(t, map[string]string{"HEADCOUNT_BASE_URL": "https://headcount.example"})
	c := browser(t)
	// Reached as a proxy in front of it would: with the public host.
	req, err := http.NewRequest(http.MethodGet, "http://"+e.srv.Addr().String()+"/auth/github", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "headcount.example"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	oc := stateCookie(resp)
	if oc == nil || !oc.Secure {
		t.Fatalf("OAuth state cookie under an https base URL: %+v, want Secure", oc)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if got := loc.Query().Get("redirect_uri"); got != "https://headcount.example/auth/github/callback" {
		t.Errorf("callback %q, want it under the base URL", got)
	}
}

func TestLogout(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	e.signIn(c, alice)

	// GET /logout signs nobody out.
	if resp, _ := get(t, c, e.url+"/logout"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /logout: %d, want 405", resp.StatusCode)
	}
	// Nor does a cross-site POST.
	if resp, _ := do(t, c, http.MethodPost, e.url+"/logout", nil, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST /logout: %d, want 403", resp.StatusCode)
	}
	if resp, _ := get(t, c, e.url+"/api/count"); resp.StatusCode != http.StatusOK {
		t.Fatalf("still signed in after refused logouts? /api/count %d", resp.StatusCode)
	}

	resp, _ := do(t, c, http.MethodPost, e.url+"/logout", nil, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("POST /logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if sc := cookie(resp, auth.SessionCookie); sc == nil || sc.MaxAge >= 0 || sc.Value != "" {
		t.Fatalf("logout did not clear the cookie: %+v", sc)
	}
	_, body := get(t, c, e.url+"/")
	if !strings.Contains(body, `id="sign-in"`) {
		t.Error("home is not signed out after logout")
	}
	if resp, _ := get(t, c, e.url+"/api/count"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/api/count after logout: %d, want 401", resp.StatusCode)
	}
}
