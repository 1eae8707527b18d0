package devgithub

import (
	"crypto/subtle"
	"encoding/json"
	"golang.org/x/oauth2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// grant is what an authorization code carries, signed and encrypted.
type grant struct {
	Login    string `json:"l"`
	ClientID string `json:"c"`
	Scope    string `json:"s"`
	// Challenge is the PKCE S256 challenge the code was issued under;
	// empty when the authorize request sent none.
	Challenge string `json:"cc,omitempty"`
	Expires   int64  `json:"e"` // Unix milliseconds
}

// access is what an access token carries, signed and encrypted.
type access struct {
	Login   string `json:"l"`
	Scope   string `json:"s"`
	Expires int64  `json:"e"` // Unix milliseconds
}

// expired reports whether a value that expires at unixMilli is spent.
func (p *Provider) expired(unixMilli int64) bool {
	return !p.cfg.Now().Before(time.UnixMilli(unixMilli))
}

// The token errors GitHub answers, with its own descriptions.
const (
	errBadCode        = "bad_verification_code"
	errBadClient      = "incorrect_client_credentials"
	errRedirectURI    = "redirect_uri_mismatch"
	errGrantType      = "unsupported_grant_type"
	tokenErrorDocsURI = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#"
)

func (p *Provider) serveAccessToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, formLimit)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "devgithub: malformed form", http.StatusBadRequest)
		return
	}
	clientID, secret := clientCredentials(r)
	if !p.validClient(clientID, secret) {
		writeTokenError(w, r, errBadClient, "The client_id and/or client_secret passed are incorrect.")
		return
	}
	if gt := r.Form.Get("grant_type"); gt != "" && gt != "authorization_code" {
		writeTokenError(w, r, errGrantType, "The grant type is not supported.")
		return
	}
	var g grant
	if err := p.codec.Decode(codeName, r.Form.Get("code"), &g); err != nil ||
		p.expired(g.Expires) || g.ClientID != clientID {
		writeTokenError(w, r, errBadCode, "The code passed is incorrect or expired.")
		return
	}
	if !verifies(r.Form.Get("code_verifier"), g.Challenge) {
		writeTokenError(w, r, errBadCode, "The code_verifier does not match the code_challenge.")
		return
	}
	if ru := r.Form.Get("redirect_uri"); ru != "" && ru != p.cfg.CallbackURL {
		writeTokenError(w, r, errRedirectURI, "The redirect_uri MUST match the registered callback URL for this application.")
		return
	}
	token, err := p.codec.Encode(tokenName, access{
		Login:   g.Login,
		Scope:   g.Scope,
		Expires: p.cfg.Now().Add(tokenTTL).UnixMilli(),
	})
	if err != nil {
		http.Error(w, "devgithub: cannot issue a token", http.StatusInternalServerError)
		return
	}
	writeTokenAnswer(w, r, map[string]string{
		"access_token": token,
		"token_type":   "bearer",
		"scope":        grantedScope(g.Scope),
	})
}

// verifies reports whether verifier answers a code's PKCE challenge: a
// code issued under a challenge is exchanged only with the verifier whose
// SHA-256 it is (RFC 7636), so a leaked code is useless without the
// verifier, which never left the app that began the sign-in.
func verifies(verifier, challenge string) bool {
	if challenge == "" {
		return true
	}
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	want := oauth2.S256ChallengeFromVerifier(verifier)
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// clientCredentials reads the client's credentials from HTTP Basic auth,
// which golang.org/x/oauth2 tries first, or else from the form. Basic
// credentials are form-encoded first (RFC 6749, section 2.3.1), so they are
// decoded here.
func clientCredentials(r *http.Request) (id, secret string) {
	if user, pass, ok := r.BasicAuth(); ok {
		return unescape(user), unescape(pass)
	}
	return r.Form.Get("client_id"), r.Form.Get("client_secret")
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func (p *Provider) validClient(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(p.cfg.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(p.cfg.ClientSecret))
	return idOK&secretOK == 1
}

// grantedScope lists scopes as GitHub's token answer does: comma-separated,
// whatever separator the request used.
func grantedScope(requested string) string {
	return strings.Join(strings.FieldsFunc(requested, func(r rune) bool {
		return r == ' ' || r == ','
	}), ",")
}

// writeTokenError answers a failed exchange GitHub's way: status 200 with
// an error body, which golang.org/x/oauth2 turns into a *RetrieveError.
func writeTokenError(w http.ResponseWriter, r *http.Request, code, description string) {
	writeTokenAnswer(w, r, map[string]string{
		"error":             code,
		"error_description": description,
		"error_uri":         tokenErrorDocsURI + strings.ReplaceAll(code, "_", "-"),
	})
}

// writeTokenAnswer encodes fields as JSON when the client accepts it, else
// form-encoded, as GitHub does by default.
func writeTokenAnswer(w http.ResponseWriter, r *http.Request, fields map[string]string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if acceptsJSON(r) {
		h.Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(fields)
		return
	}
	v := make(url.Values, len(fields))
	for k, f := range fields {
		v.Set(k, f)
	}
	h.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(v.Encode()))
}

func acceptsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}
