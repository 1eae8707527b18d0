package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"

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
