package devgithub_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/markbates/goth/providers/github"
	"golang.org/x/oauth2"
)

// TestExchangeRefusesBadCodes drives goth's real exchange with codes and
// secrets that must fail, and checks the error oauth2 reports.
func TestExchangeRefusesBadCodes(t *testing.T) {
	cases := []struct {
		name     string
		code     func(rg *rig) string
		secret   string
		wantCode string
	}{
		{"forged", func(*rig) string { return "not-a-code" }, clientSecret, "bad_verification_code"},
		{"empty", func(*rig) string { return "" }, clientSecret, "bad_verification_code"},
		{"tampered", func(rg *rig) string {
			c := []byte(rg.code("alice"))
			c[len(c)/2] ^= 1
			return string(c)
		}, clientSecret, "bad_verification_code"},
		{"from another key", func(rg *rig) string { return newRig(rg.t).code("alice") }, clientSecret, "bad_verification_code"},
		{"expired", func(rg *rig) string {
			c := rg.code("alice")
			rg.clock.Advance(10*time.Minute + time.Second)
			return c
		}, clientSecret, "bad_verification_code"},
		{"wrong secret", func(rg *rig) string { return rg.code("alice") }, "not-the-secret", "incorrect_client_credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rg := newRig(t)
			code := tc.code(rg)
			sess := &github.Session{}
			_, err := sess.Authorize(rg.githubProvider(tc.secret), url.Values{"code": {code}})
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != tc.wantCode {
				t.Fatalf("Authorize error = %v, want RetrieveError %s", err, tc.wantCode)
			}
			if re.Response.StatusCode != http.StatusOK {
				t.Errorf("status %d, want 200 as GitHub answers", re.Response.StatusCode)
			}
			if sess.AccessToken != "" {
				t.Errorf("session got a token")
			}
		})
	}
}

// TestTokenAnswerEncodings checks both of GitHub's encodings and both ways
// of passing client credentials.
func TestTokenAnswerEncodings(t *testing.T) {
	rg := newRig(t)
	code := rg.code("alice")
	tokenURL := rg.idp.TokenURL(rg.idpURL)

	post := func(form url.Values, basic bool, accept string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if basic {
			req.SetBasicAuth(clientID, clientSecret)
		}
		return rg.do(req)
	}

	// JSON, credentials in Basic auth.
	resp, body := post(url.Values{"code": {code}}, true, "application/json")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("JSON answer Content-Type %q", ct)
	}
	var answer map[string]string
	decodeJSON(t, body, &answer)
	if answer["access_token"] == "" || answer["token_type"] != "bearer" || answer["scope"] != "read:user,user:email" {
		t.Errorf("JSON answer %v", answer)
	}

	// Form encoding, credentials in the form.
	creds := url.Values{"code": {code}, "client_id": {clientID}, "client_secret": {clientSecret}}
	resp, body = post(creds, false, "")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		t.Errorf("form answer Content-Type %q", ct)
	}
	vals, err := url.ParseQuery(body)
	if err != nil || vals.Get("access_token") == "" || vals.Get("token_type") != "bearer" {
		t.Errorf("form answer %q (%v)", body, err)
	}

	// Errors follow the same negotiation, always with status 200.
	bad := url.Values{"code": {"nope"}, "client_id": {clientID}, "client_secret": {clientSecret}}
	resp, body = post(bad, false, "")
	vals, _ = url.ParseQuery(body)
	if resp.StatusCode != http.StatusOK || vals.Get("error") != "bad_verification_code" || vals.Get("error_description") == "" {
		t.Errorf("form error answer %d %q", resp.StatusCode, body)
	}
	resp, body = post(bad, false, "application/json")
	decodeJSON(t, body, &answer)
	if resp.StatusCode != http.StatusOK || answer["error"] != "bad_verification_code" {
		t.Errorf("JSON error answer %d %q", resp.StatusCode, body)
	}

	// Only the authorization-code grant exists here, as at GitHub.
	_, body = post(url.Values{"code": {code}, "grant_type": {"password"}}, true, "application/json")
	decodeJSON(t, body, &answer)
	if answer["error"] != "unsupported_grant_type" {
		t.Errorf("password grant: %s", body)
	}

	// A redirect_uri other than the callback is refused at the exchange too.
	creds.Set("redirect_uri", "http://attacker.invalid/cb")
	_, body = post(creds, false, "application/json")
	decodeJSON(t, body, &answer)
	if answer["error"] != "redirect_uri_mismatch" {
		t.Errorf("foreign redirect_uri: %s", body)
	}
}
