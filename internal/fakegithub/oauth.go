package fakegithub

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// GitHub's documentation pages, quoted in its error answers.
const (
	authorizeErrorsDoc = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/"
	tokenErrorsDoc     = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
)

// notFoundPage stands in for github.com's 404 page, which is what an
// authorize request for an unknown client_id gets.
const notFoundPage = "<!DOCTYPE html>\n<html><head><title>Page not found · GitHub</title></head>" +
	"<body><h1>404</h1><p>This is not the web page you are looking for.</p></body></html>\n"

// serveAuthorize plays a browser already signed in to GitHub that has
// already authorized the app: GitHub then redirects straight back.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.clientID {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(notFoundPage))
		return
	}
	// The fake has no registered callback to compare with, so it holds
	// redirect_uri to loopback URLs: a test must never send a browser
	// off the machine.
	redirectURI := q.Get("redirect_uri")
	back, err := url.Parse(redirectURI)
	if err != nil || (back.Scheme != "http" && back.Scheme != "https") || !isLoopback(back.Hostname()) {
		http.Error(w, "fakegithub: redirect_uri must be an absolute http(s) URL on a loopback host", http.StatusBadRequest)
		return
	}

	// GitHub takes PKCE (S256 only) and, like it, the fake takes a
	// request without a challenge; one given binds the code to its
	// verifier.
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if (challenge != "" || method != "") && (method != "S256" || len(challenge) != 43) {
		http.Error(w, "fakegithub: code_challenge must be an S256 challenge (43 base64url characters, code_challenge_method=S256)", http.StatusBadRequest)
		return
	}

	answer := url.Values{}
	s.mu.Lock()
	s.lastChallenge = challenge
	if s.deny {
		answer.Set("error", "access_denied")
		answer.Set("error_description", "The user has denied your application access.")
		answer.Set("error_uri", authorizeErrorsDoc+"#access-denied")
	} else {
		code := randomString("0123456789abcdef", 20)
		s.codes[code] = grant{
			user:        s.user,
			scopes:      splitScopes(q.Get("scope")),
			redirectURI: redirectURI,
			challenge:   challenge,
			expires:     s.nowLocked().Add(codeTTL),
		}
		answer.Set("code", code)
	}
	s.mu.Unlock()
	if state := q.Get("state"); state != "" {
		answer.Set("state", state)
	}

	params := back.Query()
	for k, vs := range answer {
		params[k] = vs
	}
	back.RawQuery = params.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (s *Server) serveAccessToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "fakegithub: malformed form", http.StatusBadRequest)
		return
	}
	id, secret := r.Form.Get("client_id"), r.Form.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		// Basic credentials arrive form-encoded (RFC 6749, section 2.3.1).
		id, secret = queryUnescape(user), queryUnescape(pass)
	}
	if id != s.clientID || secret != s.clientSecret {
		writeTokenError(w, r, "incorrect_client_credentials",
			"The client_id and/or client_secret passed are incorrect.", "#incorrect-client-credentials")
		return
	}

	// A code is spent by the exchange that succeeds; a request refused for
	// its credentials or redirect_uri leaves it, so that oauth2's second
	// try (credentials in the form after Basic auth) reports the real cause.
	code := r.Form.Get("code")
	s.mu.Lock()
	g, ok := s.codes[code]
	if ok && !s.nowLocked().Before(g.expires) {
		delete(s.codes, code)
		ok = false
	}
	mismatch := ok && r.Form.Get("redirect_uri") != "" && r.Form.Get("redirect_uri") != g.redirectURI
	// A wrong verifier spends the code, as a wrong code would: it is
	// someone holding a code that is not theirs.
	unverified := ok && !mismatch && !verifies(r.Form.Get("code_verifier"), g.challenge)
	if ok && !mismatch {
		delete(s.codes, code)
	}
	s.mu.Unlock()
	if !ok || unverified {
		writeTokenError(w, r, "bad_verification_code",
			"The code passed is incorrect or expired.", "#bad-verification-code")
		return
	}
	if mismatch {
		writeTokenError(w, r, "redirect_uri_mismatch",
			"The redirect_uri MUST match the registered callback URL for this application.", "#redirect-uri-mismatch2")
		return
	}

	token := "gho_" + randomString("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 36)
	s.mu.Lock()
	s.tokens[token] = grant{user: g.user, scopes: g.scopes}
	s.mu.Unlock()
	writeTokenAnswer(w, r, [][2]string{
		{"access_token", token},
		{"token_type", "bearer"},
		{"scope", strings.Join(g.scopes, ",")},
	})
}

// writeTokenError answers with status 200, as GitHub does for every failed
// exchange.
func writeTokenError(w http.ResponseWriter, r *http.Request, code, description, anchor string) {
	writeTokenAnswer(w, r, [][2]string{
		{"error", code},
		{"error_description", description},
		{"error_uri", tokenErrorsDoc + anchor},
	})
}

// writeTokenAnswer encodes fields as JSON when the client accepts it, else
// form-encoded: GitHub's default.
func writeTokenAnswer(w http.ResponseWriter, r *http.Request, fields [][2]string) {
	w.Header().Set("Cache-Control", "no-store")
	if acceptsJSON(r.Header.Get("Accept")) {
		obj := make(map[string]string, len(fields))
		for _, f := range fields {
			obj[f[0]] = f[1]
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(obj)
		return
	}
	// GitHub's form answers keep this field order, which url.Values.Encode
	// would sort away.
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		parts = append(parts, url.QueryEscape(f[0])+"="+url.QueryEscape(f[1]))
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(strings.Join(parts, "&")))
}

func acceptsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

// splitScopes reads a scope list separated by spaces, as oauth2 sends it,
// or by commas, which GitHub also accepts.
func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

// verifies reports whether verifier is the one whose S256 challenge the
// code was issued under (RFC 7636, section 4.6); a code issued without a
// challenge needs none.
func verifies(verifier, challenge string) bool {
	if challenge == "" {
		return true
	}
	sum := sha256.Sum256([]byte(verifier))
	return len(verifier) >= 43 && len(verifier) <= 128 &&
		base64.RawURLEncoding.EncodeToString(sum[:]) == challenge
}

func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
