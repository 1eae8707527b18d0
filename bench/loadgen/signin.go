package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
)

// signIn goes through headcount's dev sign-in the way a browser does
// (start, type a user name, callback, session) and trades the session for
// a bearer token, which it returns. Redirects are followed by hand: each
// hop is checked, and the callback is requested on base's origin, since
// the server names itself by its HEADCOUNT_BASE_URL (localhost by default)
// while the cookies live on the host of base.
func signIn(ctx context.Context, tr http.RoundTripper, base *url.URL, login string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	c := &http.Client{
		Transport:     tr,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	// 1. Start: a redirect to the dev authorize page, and the state cookie.
	resp, err := send(ctx, c, http.MethodGet, base.String()+"/auth/github", nil, http.StatusFound)
	if err != nil {
		return "", fmt.Errorf("sign-in start: %w", err)
	}
	authorize, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("sign-in start: %w", err)
	}
	q := authorize.Query()

	// 2. The dev provider's form: a user name, and the fields it carried.
	form := url.Values{
		"login":        {login},
		"state":        {q.Get("state")},
		"client_id":    {q.Get("client_id")},
		"redirect_uri": {q.Get("redirect_uri")},
	}
	resp, err = send(ctx, c, http.MethodPost, base.String()+"/dev/github/login/oauth/authorize", form, http.StatusSeeOther)
	if err != nil {
		return "", fmt.Errorf("dev authorize: %w", err)
	}
	callback, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("dev authorize: %w", err)
	}

	// 3. The callback: checks the state, exchanges the code, starts the session.
	onBase := *base
	onBase.Path, onBase.RawQuery = callback.Path, callback.RawQuery
	if _, err := send(ctx, c, http.MethodGet, onBase.String(), nil, http.StatusSeeOther); err != nil {
		return "", fmt.Errorf("sign-in callback: %w", err)
	}

	// 4. A bearer token for the streams.
	resp, err = send(ctx, c, http.MethodPost, base.String()+"/api/token", url.Values{}, http.StatusOK)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(resp.body, &tok); err != nil || tok.Token == "" {
		return "", fmt.Errorf("token: unexpected answer %q", resp.body)
	}
	return tok.Token, nil
}

// answer is a response whose (small) body has been read.
type answer struct {
	*http.Response
	body []byte
}

// send makes one request (a form POST when form is not nil) and fails
// unless the status is want.
func send(ctx context.Context, c *http.Client, method, target string, form url.Values, want int) (answer, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return answer{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, err
	}
	if resp.StatusCode != want {
		return answer{}, fmt.Errorf("%s %s: status %d, want %d: %.200s", method, req.URL.Path, resp.StatusCode, want, b)
	}
	return answer{Response: resp, body: b}, nil
}
