package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"github.com/headcount/headcount/internal/devsignin"
)

// signIn goes through headcount's dev sign-in the way a browser does
// (internal/devsignin) on base's origin, and trades the session for a
// bearer token, which it returns.
func signIn(ctx context.Context, tr http.RoundTripper, base *url.URL, login string) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	return devsignin.SignInForToken(ctx, &http.Client{Transport: tr, Jar: jar}, base.String(), login)
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
