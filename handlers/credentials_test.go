package handlers_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/headcount/headcount/auth"
)

func TestTokenEndpoint(t *testing.T) {
	e := start(t, map[string]string{"HEADCOUNT_TOKEN_TTL": "30m"})
	c := browser(t)

	if resp, body := do(t, c, http.MethodPost, e.url+"/api/token", nil); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
		t.Fatalf("POST /api/token signed out: %d %s, want 401 JSON", resp.StatusCode, body)
	}
	e.signIn(c, alice)
	// Another site cannot make a signed-in browser mint a token.
	if resp, _ := do(t, c, http.MethodPost, e.url+"/api/token", nil, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST /api/token: %d, want 403", resp.StatusCode)
	}
	before := time.Now()
	resp, body := do(t, c, http.MethodPost, e.url+"/api/token", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /api/token: %d, cache-control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	var tr struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, tr.ExpiresAt)
	if err != nil {
		t.Fatalf("expires_at %q is not RFC 3339", tr.ExpiresAt)
	}
	if d := exp.Sub(before); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("token lives %v, want HEADCOUNT_TOKEN_TTL (30m)", d)
	}

	// The token alone (no cookie) opens the stream and reads the count.
	cli := &http.Client{}
	if resp, body := get(t, cli, e.url+"/api/count", "Authorization", "Bearer "+tr.Token); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"user_count"`) {
		t.Fatalf("GET /api/count with the token: %d %s", resp.StatusCode, body)
	}
	s := e.stream(cli, "Authorization", "Bearer "+tr.Token)
	if err := s.WaitLast(waitTime, "1"); err != nil {
		t.Fatal(err)
	}
	// A token cannot mint tokens.
	if resp, _ := do(t, cli, http.MethodPost, e.url+"/api/token", nil, "Authorization", "Bearer "+tr.Token); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /api/token with a bearer: %d, want 401", resp.StatusCode)
	}
}

func TestBadTokensAre401(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	e.signIn(c, alice)
	good := e.token(c)
	parts := strings.Split(good, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", good)
	}
	header, payload, sig := parts[0], parts[1], parts[2]

	other := start(t, map[string]string{"HEADCOUNT_SESSION_SECRET": strings.Repeat("x", 40)})
	oc := browser(t)
	other.signIn(oc, alice)
	foreign := other.token(oc)

	// A token for alice with a forged payload (bob's id) and alice's signature.
	claims := map[string]any{}
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	json.Unmarshal(raw, &claims)
	claims["sub"] = "1002"
	forged, _ := json.Marshal(claims)

	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"sub": "1001", "login": "alice", "aud": "headcount/events", "iss": "headcount", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)

	cases := map[string]string{
		"tampered payload":   header + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + sig,
		"tampered signature": header + "." + payload + "." + flip(sig),
		"truncated":          good[:len(good)-10],
		"no signature":       header + "." + payload + ".",
		"foreign secret":     foreign,
		"alg none":           none,
		"garbage":            "not-a-token",
		"empty":              "",
	}
	for name, token := range cases {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/events", "/api/count"} {
				// Beside a good session cookie: the bearer alone is judged.
				resp, body := get(t, c, e.url+path, "Authorization", "Bearer "+token)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401: %s", path, resp.StatusCode, body)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", path)
				}
			}
		})
	}
	if got := e.srv.Hub().Stats().Opened; got != 0 {
		t.Errorf("%d streams opened by bad tokens", got)
	}
}

func TestForgedAndTamperedCookiesAre401(t *testing.T) {
	e := start(t, nil)
	c := browser(t)
	e.signIn(c, alice)
	resp, _ := get(t, c, e.url+"/api/count")
	if resp.StatusCode != http.StatusOK {
		t.Fatal("not signed in")
	}
	var good string
	for _, ck := range c.Jar.Cookies(resp.Request.URL) {
		if ck.Name == auth.SessionCookie {
			good = ck.Value
		}
	}
	other := start(t, map[string]string{"HEADCOUNT_SESSION_SECRET": strings.Repeat("y", 40)})
	oc := browser(t)
	other.signIn(oc, alice)
	var foreign string
	for _, ck := range oc.Jar.Cookies(mustURL(t, other.url)) {
		if ck.Name == auth.SessionCookie {
			foreign = ck.Value
		}
	}
	cases := map[string]string{
		"forged":         base64.URLEncoding.EncodeToString([]byte(`{"id":"1","login":"mallory"}`)),
		"tampered":       flip(good),
		"truncated":      good[:len(good)/2],
		"foreign secret": foreign,
		"empty":          "",
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			cli := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			hdr := []string{"Cookie", auth.SessionCookie + "=" + v}
			for _, path := range []string{"/events", "/api/count"} {
				if resp, _ := get(t, cli, e.url+path, hdr...); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s: %d, want 401", path, resp.StatusCode)
				}
			}
			if resp, _ := do(t, cli, http.MethodPost, e.url+"/api/token", nil, hdr...); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("/api/token: %d, want 401", resp.StatusCode)
			}
			resp, body := get(t, cli, e.url+"/", hdr...)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="sign-in"`) {
				t.Errorf("home with a bad cookie: %d, want the signed-out page", resp.StatusCode)
			}
		})
	}
	if got := e.srv.Hub().Stats().Opened; got != 0 {
		t.Errorf("%d streams opened by bad cookies", got)
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// flip changes one character in the middle of s.
func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
