package fakegithub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/markbates/goth/providers/github"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	clientID     = "Iv1.fakeclient"
	clientSecret = "fake-secret"
	// callback is never requested: the tests read the redirect instead.
	callback = "http://127.0.0.1:9/auth/github/callback"
)

// browser is an HTTP client that stops at redirects, so tests can read them.
func browser(t *testing.T) *http.Client {
	t.Helper()
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{
		Transport: transport,
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// provider is goth's real GitHub provider pointed at s, as headcount
// builds it.
func provider(t *testing.T, s *Server, secret string, scopes ...string) *github.Provider {
	t.Helper()
	gh := github.NewCustomisedURL(clientID, secret, callback,
		s.AuthURL(), s.TokenURL(), s.ProfileURL(), s.EmailURL(), scopes...)
	gh.HTTPClient = browser(t)
	return gh
}

// authorize sends the browser to the authorize URL goth builds and returns
// the query the fake redirected back with.
func authorize(t *testing.T, gh *github.Provider, state string) url.Values {
	t.Helper()
	sess, err := gh.BeginAuth(state)
	if err != nil {
		t.Fatal(err)
	}
	authURL, err := sess.GetAuthURL()
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, authURL, "")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != callback {
		t.Fatalf("redirected to %s, want the callback", loc)
	}
	return loc.Query()
}

func get(t *testing.T, rawURL, authorization string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := browser(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func exchange(gh *github.Provider, code string) (*github.Session, error) {
	sess := &github.Session{}
	_, err := sess.Authorize(gh, url.Values{"code": {code}})
	return sess, err
}

func wantRetrieveError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code {
		t.Fatalf("error = %v, want oauth2 error %s", err, code)
	}
	if re.Response.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200 as GitHub answers", re.Response.StatusCode)
	}
}

func TestSignInWithGoth(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	s.SignIn(User{ID: 42, Login: "alice", Name: "Alice Liddell"})
	gh := provider(t, s, clientSecret, "read:user", "user:email")

	q := authorize(t, gh, "xyz")
	if q.Get("state") != "xyz" || len(q.Get("code")) != 20 {
		t.Fatalf("callback query %v", q)
	}
	sess, err := exchange(gh, q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sess.AccessToken, "gho_") {
		t.Errorf("token %q does not look like GitHub's", sess.AccessToken)
	}
	u, err := gh.FetchUser(sess)
	if err != nil {
		t.Fatal(err)
	}
	if u.UserID != "42" || u.NickName != "alice" || u.Name != "Alice Liddell" ||
		u.Email != "42+alice@users.noreply.github.com" || u.AvatarURL != s.URL+"/avatars/u/42?v=4" {
		t.Errorf("user %+v", u)
	}
	for path, want := range map[string]int{"/login/oauth/authorize": 1, "/login/oauth/access_token": 1, "/user": 1, "/user/emails": 1} {
		if got := s.Requests(path); got != want {
			t.Errorf("Requests(%s) = %d, want %d", path, got, want)
		}
	}

	resp, _ := get(t, u.AvatarURL, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("avatar: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestPublicEmailSkipsEmailList(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	s.SignIn(User{ID: 7, Login: "bob", Email: "bob@example.com"})
	gh := provider(t, s, clientSecret, "read:user", "user:email")
	sess, err := exchange(gh, authorize(t, gh, "s").Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := gh.FetchUser(sess)
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "bob@example.com" || u.Name != "" || s.Requests("/user/emails") != 0 {
		t.Errorf("user %+v, /user/emails asked %d times", u, s.Requests("/user/emails"))
	}
}

func TestDeny(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	gh := provider(t, s, clientSecret, "read:user")
	s.Deny(true)
	q := authorize(t, gh, "st")
	if q.Get("error") != "access_denied" || q.Get("error_description") == "" ||
		q.Get("error_uri") == "" || q.Get("state") != "st" || q.Has("code") {
		t.Errorf("denied callback query %v", q)
	}
	s.Deny(false)
	if q := authorize(t, gh, "st"); q.Get("code") == "" {
		t.Errorf("after Deny(false): %v", q)
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	gh := provider(t, s, clientSecret, "read:user")
	code := authorize(t, gh, "s").Get("code")
	if _, err := exchange(gh, code); err != nil {
		t.Fatal(err)
	}
	_, err := exchange(gh, code)
	wantRetrieveError(t, err, "bad_verification_code")
}

func TestCodeExpires(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	gh := provider(t, s, clientSecret, "read:user")
	code := authorize(t, gh, "s").Get("code")
	s.mu.Lock()
	s.skew += codeTTL
	s.mu.Unlock()
	_, err := exchange(gh, code)
	wantRetrieveError(t, err, "bad_verification_code")
}

func TestWrongSecret(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	code := authorize(t, provider(t, s, clientSecret, "read:user"), "s").Get("code")
	_, err := exchange(provider(t, s, "wrong", "read:user"), code)
	wantRetrieveError(t, err, "incorrect_client_credentials")
	// The code was not spent by the refused request.
	if _, err := exchange(provider(t, s, clientSecret, "read:user"), code); err != nil {
		t.Errorf("code after a wrong secret: %v", err)
	}
}

func TestRedirectURIMustMatchAtExchange(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	code := authorize(t, provider(t, s, clientSecret, "read:user"), "s").Get("code")
	other := github.NewCustomisedURL(clientID, clientSecret, "http://127.0.0.1:9/elsewhere",
		s.AuthURL(), s.TokenURL(), s.ProfileURL(), s.EmailURL())
	other.HTTPClient = browser(t)
	_, err := exchange(other, code)
	wantRetrieveError(t, err, "redirect_uri_mismatch")
}

func TestFailProfile(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	gh := provider(t, s, clientSecret, "read:user", "user:email")
	sess, err := exchange(gh, authorize(t, gh, "s").Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	s.FailProfile(http.StatusServiceUnavailable)
	if _, err := gh.FetchUser(sess); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("FetchUser during failure: %v, want the 503 reported", err)
	}
	s.FailProfile(0)
	if u, err := gh.FetchUser(sess); err != nil || u.NickName != "octocat" {
		t.Errorf("FetchUser after recovery: %+v, %v", u, err)
	}
}

func TestUnreachable(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	gh := provider(t, s, clientSecret, "read:user")
	code := authorize(t, gh, "s").Get("code")
	s.Close()
	var re *oauth2.RetrieveError
	if _, err := exchange(gh, code); err == nil || errors.As(err, &re) {
		t.Errorf("exchange with GitHub down: %v, want a transport error", err)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	for _, tc := range []struct {
		name        string
		query       url.Values
		status      int
		contentType string
	}{
		{"unknown client", url.Values{"client_id": {"other"}, "redirect_uri": {callback}}, http.StatusNotFound, "text/html"},
		{"no redirect_uri", url.Values{"client_id": {clientID}}, http.StatusBadRequest, "text/plain"},
		{"off-machine redirect_uri", url.Values{"client_id": {clientID}, "redirect_uri": {"https://example.com/cb"}}, http.StatusBadRequest, "text/plain"},
	} {
		resp, _ := get(t, s.AuthURL()+"?"+tc.query.Encode(), "")
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.contentType)
		}
	}
}

func TestAPIAuthentication(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	gh := provider(t, s, clientSecret, "read:user") // no user:email
	sess, err := exchange(gh, authorize(t, gh, "s").Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, auth string
		status     int
		message    string
	}{
		{"/user", "", http.StatusUnauthorized, "Requires authentication"},
		{"/user", "Bearer nope", http.StatusUnauthorized, "Bad credentials"},
		{"/user", "Basic " + sess.AccessToken, http.StatusUnauthorized, "Bad credentials"},
		{"/user/emails", "token nope", http.StatusUnauthorized, "Bad credentials"},
		{"/user", "token " + sess.AccessToken, http.StatusOK, ""},
		{"/user/emails", "Bearer " + sess.AccessToken, http.StatusNotFound, "Not Found"}, // scope missing
	} {
		resp, body := get(t, s.URL+tc.path, tc.auth)
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			!strings.Contains(body, fmt.Sprintf(`"message":%q`, tc.message)) != (tc.message == "") {
			t.Errorf("%s with %.12q: %d %s", tc.path, tc.auth, resp.StatusCode, body)
		}
	}
}

// TestConcurrentSignIns runs parallel flows so -race sees the shared maps
// under load.
func TestConcurrentSignIns(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	gh := provider(t, s, clientSecret, "read:user", "user:email")
	const flows = 8
	errs := make(chan error, flows)
	var wg sync.WaitGroup
	for i := range flows {
		wg.Go(func() {
			sess, err := exchange(gh, authorizeQuiet(gh, fmt.Sprint(i)))
			if err == nil {
				_, err = gh.FetchUser(sess)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := s.Requests("/user"); got != flows {
		t.Errorf("Requests(/user) = %d, want %d", got, flows)
	}
}

// authorizeQuiet is authorize for goroutines other than the test's: it
// returns "" instead of failing the test, and the exchange then fails.
func authorizeQuiet(gh *github.Provider, state string) string {
	sess, err := gh.BeginAuth(state)
	if err != nil {
		return ""
	}
	authURL, _ := sess.GetAuthURL()
	resp, err := gh.HTTPClient.Get(authURL)
	if err != nil {
		return ""
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return ""
	}
	return loc.Query().Get("code")
}

// TestTokenAnswerJSON checks the JSON encoding GitHub uses when asked for
// it; goth's exchange, which does not ask, gets the form encoding.
func TestTokenAnswerJSON(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	code := authorize(t, provider(t, s, clientSecret, "read:user", "user:email"), "s").Get("code")
	post := func(code string) (*http.Response, map[string]string) {
		t.Helper()
		form := url.Values{"client_id": {clientID}, "client_secret": {clientSecret}, "code": {code}}
		req, err := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := browser(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
			t.Fatal(err)
		}
		return resp, answer
	}
	resp, answer := post(code)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		answer["token_type"] != "bearer" || answer["scope"] != "read:user,user:email" ||
		!strings.HasPrefix(answer["access_token"], "gho_") {
		t.Errorf("answer %v (%s)", answer, resp.Header.Get("Content-Type"))
	}
	resp, answer = post(code)
	if resp.StatusCode != http.StatusOK || answer["error"] != "bad_verification_code" || answer["error_uri"] == "" {
		t.Errorf("reused code: %d %v", resp.StatusCode, answer)
	}
}

// TestPKCE: a code issued under an S256 challenge is exchanged only with
// its verifier; a wrong one spends it.
func TestPKCE(t *testing.T) {
	s := Start(t, clientID, clientSecret)
	gh := provider(t, s, clientSecret, "read:user")
	cfg := &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: callback,
		Endpoint: oauth2.Endpoint{AuthURL: s.AuthURL(), TokenURL: s.TokenURL()}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, browser(t))
	codeFor := func(verifier string) string {
		t.Helper()
		sess, err := gh.BeginAuth("s")
		if err != nil {
			t.Fatal(err)
		}
		authURL, _ := sess.GetAuthURL()
		resp, body := get(t, authURL+"&code_challenge="+oauth2.S256ChallengeFromVerifier(verifier)+"&code_challenge_method=S256", "")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize: %d %s", resp.StatusCode, body)
		}
		if s.LastChallenge() != oauth2.S256ChallengeFromVerifier(verifier) {
			t.Fatalf("LastChallenge = %q", s.LastChallenge())
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return loc.Query().Get("code")
	}
	verifier := oauth2.GenerateVerifier()
	code := codeFor(verifier)
	_, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	wantRetrieveError(t, err, "bad_verification_code")
	_, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	wantRetrieveError(t, err, "bad_verification_code") // spent by the wrong verifier
	_, err = cfg.Exchange(ctx, codeFor(verifier))
	wantRetrieveError(t, err, "bad_verification_code") // no verifier
	if _, err := cfg.Exchange(ctx, codeFor(verifier), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("the right verifier: %v", err)
	}
	sess, _ := gh.BeginAuth("s")
	authURL, _ := sess.GetAuthURL()
	if resp, _ := get(t, authURL+"&code_challenge="+verifier+"&code_challenge_method=plain", ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a plain challenge: %d, want 400", resp.StatusCode)
	}
}
