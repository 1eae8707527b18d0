package devgithub_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// pkceCode signs in as login through a form opened with the S256
// challenge of verifier and returns the code.
func (rg *rig) pkceCode(login, verifier string) string {
	rg.t.Helper()
	sess, err := rg.gh.BeginAuth("s")
	if err != nil {
		rg.t.Fatal(err)
	}
	authURL, _ := sess.GetAuthURL()
	authURL += "&code_challenge=" + oauth2.S256ChallengeFromVerifier(verifier) + "&code_challenge_method=S256"
	resp, body := rg.get(authURL)
	if resp.StatusCode != http.StatusOK {
		rg.t.Fatalf("authorize with a challenge: %d %s", resp.StatusCode, body)
	}
	action, fields, _ := readForm(rg.t, body)
	fields.Set("login", login)
	resp, body = rg.postForm(action, fields, nil)
	if resp.StatusCode != http.StatusSeeOther {
		rg.t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return loc.Query().Get("code")
}

func (rg *rig) oauth2Config() *oauth2.Config {
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: rg.idp.AuthURL(), TokenURL: rg.idp.TokenURL(rg.idpURL)},
		RedirectURL:  rg.appURL + callbackPath,
	}
}

// TestPKCE: a code issued under an S256 challenge is exchanged only with
// its verifier, so a leaked code is useless to whoever lacks it.
func TestPKCE(t *testing.T) {
	rg := newRig(t)
	verifier := oauth2.GenerateVerifier()
	cfg := rg.oauth2Config()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, rg.browser)

	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"no verifier":        nil,
		"another verifier":   {oauth2.VerifierOption(oauth2.GenerateVerifier())},
		"the challenge":      {oauth2.VerifierOption(oauth2.S256ChallengeFromVerifier(verifier))},
		"a too-short secret": {oauth2.VerifierOption("short")},
	} {
		_, err := cfg.Exchange(ctx, rg.pkceCode("ada", verifier), opts...)
		if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "bad_verification_code" {
			t.Errorf("%s: exchange answered %v, want bad_verification_code", name, err)
		}
	}
	tok, err := cfg.Exchange(ctx, rg.pkceCode("ada", verifier), oauth2.VerifierOption(verifier))
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("the right verifier: %v", err)
	}

	// Only S256, and only a well-formed challenge, is taken.
	sess, _ := rg.gh.BeginAuth("s")
	base, _ := sess.GetAuthURL()
	for _, q := range []string{
		"&code_challenge=" + verifier + "&code_challenge_method=plain",
		"&code_challenge=abc&code_challenge_method=S256",
		"&code_challenge=" + strings.Repeat("A", 43),
	} {
		if resp, _ := rg.get(base + q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("authorize with %q: %d, want 400", q, resp.StatusCode)
		}
	}
}
