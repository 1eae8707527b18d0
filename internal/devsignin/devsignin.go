// Package devsignin signs a client in to a headcount in dev sign-in mode
// the way a browser without JavaScript does: "Sign in with GitHub", the
// dev provider's form (its action and hidden fields read from the page),
// a user name, the callback, the session. It is the one such client of
// the tests and the load generator.
//
// Every request goes to the origin of the base URL given, whatever host a
// redirect names (the server calls itself by its public URL, localhost by
// default, while a client may reach it by address), with one exception:
// headcount sends a sign-in begun under another host than its public
// URL's to the public URL first, so the state cookie lands on the host the
// provider returns to; the sign-in then goes on there. SignInForToken's
// token works on every host; SignIn's session cookie lives on the host the
// sign-in took place on.
package devsignin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/headcount/headcount/auth"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// The dev sign-in form, as templates/dev-authorize.html renders it.
var (
	formAction  = regexp.MustCompile(`<form[^>]*\saction="([^"]*)"`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// maxBody bounds what is read of any answer.
const maxBody = 1 << 20

// SignIn signs c in as login on the server at base and returns the value
// of the session cookie it was given. c must have a cookie jar; its
// redirect policy is not used (every hop is checked here).
func SignIn(ctx context.Context, c *http.Client, base, login string) (string, error) {
	session, _, err := signIn(ctx, c, base, login)
	return session, err
}

// signIn is SignIn that also returns the origin the sign-in took place on:
// base's, or the server's public URL's when base names another host.
func signIn(ctx context.Context, c *http.Client, base, login string) (string, *url.URL, error) {
	if c.Jar == nil {
		return "", nil, errors.New("devsignin: the client has no cookie jar")
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("devsignin: base URL: %w", err)
	}
	hops := *c
	hops.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	// 1. Start: a redirect to the dev provider's authorize page, and the
	// OAuth state cookie.
	resp, _, err := send(ctx, &hops, http.MethodGet, b.JoinPath("/auth/github").String(), nil, http.StatusFound)
	if err != nil {
		return "", nil, fmt.Errorf("sign-in start: %w", err)
	}
	// headcount sends a sign-in begun under another host than its public
	// URL's there first, so the state cookie is set where the provider
	// returns: sign in on that origin.
	if to, err := resp.Location(); err == nil && to.IsAbs() && to.Path == "/auth/github" && to.Host != b.Host {
		b = &url.URL{Scheme: to.Scheme, Host: to.Host, Path: b.Path}
		if resp, _, err = send(ctx, &hops, http.MethodGet, b.JoinPath("/auth/github").String(), nil, http.StatusFound); err != nil {
			return "", nil, fmt.Errorf("sign-in start on the public URL: %w", err)
		}
	}
	authorize, err := onBase(b, resp)
	if err != nil {
		return "", nil, fmt.Errorf("sign-in start: %w", err)
	}

	// 2. The form: its action and hidden fields, as a browser reads them.
	_, page, err := send(ctx, &hops, http.MethodGet, authorize.String(), nil, http.StatusOK)
	if err != nil {
		return "", nil, fmt.Errorf("dev sign-in form: %w", err)
	}
	if !strings.Contains(page, `id="login"`) {
		return "", nil, fmt.Errorf("dev sign-in form: %s has no #login field", authorize.Path)
	}
	m := formAction.FindStringSubmatch(page)
	if m == nil {
		return "", nil, fmt.Errorf("dev sign-in form: no <form action=...> on %s", authorize.Path)
	}
	action, err := authorize.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return "", nil, fmt.Errorf("dev sign-in form: action %q: %w", m[1], err)
	}
	form := url.Values{"login": {login}}
	for _, f := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	if form.Get("state") == "" {
		return "", nil, errors.New("dev sign-in form: it carries no state")
	}

	// 3. Post it: the provider answers with the callback and a code.
	action.Scheme, action.Host = b.Scheme, b.Host
	resp, _, err = send(ctx, &hops, http.MethodPost, action.String(), form, http.StatusSeeOther)
	if err != nil {
		return "", nil, fmt.Errorf("dev sign-in form: %w", err)
	}
	callback, err := onBase(b, resp)
	if err != nil {
		return "", nil, fmt.Errorf("dev sign-in form: %w", err)
	}

	// 4. The callback checks the state, exchanges the code, starts the
	// session and sends the browser home.
	resp, body, err := send(ctx, &hops, http.MethodGet, callback.String(), nil, http.StatusSeeOther)
	if err != nil {
		return "", nil, fmt.Errorf("sign-in callback: %w", err)
	}
	if to := resp.Header.Get("Location"); to != "/" {
		return "", nil, fmt.Errorf("sign-in callback: sent to %q, not home: %.200s", to, body)
	}
	for _, ck := range c.Jar.Cookies(b) {
		if strings.TrimPrefix(ck.Name, auth.HostPrefix) == auth.SessionCookie {
			return ck.Value, b, nil
		}
	}
	return "", nil, fmt.Errorf("sign-in callback: no %s cookie for %s", auth.SessionCookie, b.Host)
}

// Token is POST /api/token's answer.
type Token struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NewToken trades c's session at base for a bearer token.
func NewToken(ctx context.Context, c *http.Client, base string) (Token, error) {
	b, err := url.Parse(base)
	if err != nil {
		return Token{}, fmt.Errorf("devsignin: base URL: %w", err)
	}
	_, body, err := send(ctx, c, http.MethodPost, b.JoinPath("/api/token").String(), url.Values{}, http.StatusOK)
	if err != nil {
		return Token{}, fmt.Errorf("token: %w", err)
	}
	var tok Token
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.Token == "" {
		return Token{}, fmt.Errorf("token: %q is not {\"token\": ..., \"expires_at\": <RFC 3339>} (%v)", body, err)
	}
	return tok, nil
}

// SignInForToken signs c in as login and returns a bearer token: what a
// user copying the curl command from the page gets.
func SignInForToken(ctx context.Context, c *http.Client, base, login string) (string, error) {
	_, on, err := signIn(ctx, c, base, login)
	if err != nil {
		return "", err
	}
	tok, err := NewToken(ctx, c, on.String())
	return tok.Token, err
}

// onBase is the redirect target of resp, moved to base's origin.
func onBase(base *url.URL, resp *http.Response) (*url.URL, error) {
	to, err := resp.Location()
	if err != nil {
		return nil, err
	}
	moved := *base
	moved.Path, moved.RawPath, moved.RawQuery = to.Path, to.RawPath, to.RawQuery
	return &moved, nil
}

// send makes one request (a form POST when form is not nil) and fails
// unless the status is want; it returns the response and its body.
func send(ctx context.Context, c *http.Client, method, target string, form url.Values, want int) (*http.Response, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != want {
		return nil, "", fmt.Errorf("%s %s: status %d, want %d: %.200s", method, req.URL.Path, resp.StatusCode, want, b)
	}
	return resp, string(b), nil
}
