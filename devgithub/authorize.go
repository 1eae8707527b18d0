package devgithub

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
)

// AuthorizePage is what the sign-in form shows and posts back.
type AuthorizePage struct {
	// Action is the path the form posts to.
	Action string
	// ClientID, RedirectURI, State and Scope come from the authorize
	// request and go back as hidden fields, as GitHub's own form does.
	ClientID    string
	RedirectURI string
	State       string
	Scope       string
	// CodeChallenge and CodeChallengeMethod are the PKCE challenge of the
	// authorize request, carried through the form like the rest.
	CodeChallenge       string
	CodeChallengeMethod string
	// Login is the user name typed so far.
	Login string
	// Error says why the last attempt was refused; it is empty at first.
	Error string
}

// loginRules is shown when a user name is refused; it states GitHub's rules.
const loginRules = "A user name is 1 to 39 letters (a-z), digits or single hyphens, " +
	"and cannot begin or end with a hyphen."

// The refusal GitHub reports when the user clicks Cancel.
const (
	deniedDescription = "The user has denied your application access."
	deniedURI         = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied"
)

// formLimit bounds the form bodies read, since every field is short.
const formLimit = 64 << 10

// checkAuthorize checks the client and the PKCE challenge of an authorize
// request, the same for the form (GET) and the decision (POST): the
// refusal, or "" when both are good.
func (p *Provider) checkAuthorize(v url.Values) string {
	if msg := p.checkClient(v.Get("client_id"), v.Get("redirect_uri")); msg != "" {
		return msg
	}
	return checkChallenge(v.Get("code_challenge"), v.Get("code_challenge_method"))
}

func (p *Provider) serveAuthorizeForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if msg := p.checkAuthorize(q); msg != "" {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	p.render(w, http.StatusOK, p.page(q, q.Get("login"), ""))
}

func (p *Provider) serveAuthorizeDecision(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, formLimit)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "devgithub: malformed form", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	if msg := p.checkAuthorize(f); msg != "" {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	state := f.Get("state")
	if f.Has("cancel") {
		http.Redirect(w, r, p.callback(state, url.Values{
			"error":             {"access_denied"},
			"error_description": {deniedDescription},
			"error_uri":         {deniedURI},
		}), http.StatusSeeOther)
		return
	}
	login := strings.TrimSpace(f.Get("login"))
	if !validLogin(login) {
		p.render(w, http.StatusBadRequest, p.page(f, login, loginRules))
		return
	}
	code, err := p.codec.Encode(codeName, grant{
		Login:     login,
		ClientID:  p.cfg.ClientID,
		Scope:     f.Get("scope"),
		Challenge: f.Get("code_challenge"),
		Expires:   p.cfg.Now().Add(codeTTL).UnixMilli(),
	})
	if err != nil {
		http.Error(w, "devgithub: cannot issue a code", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, p.callback(state, url.Values{"code": {code}}), http.StatusSeeOther)
}

// checkClient returns why an authorize request is refused, or "". A
// redirect_uri, when given, must be the callback exactly: anything looser
// would make the provider an open redirect.
func (p *Provider) checkClient(clientID, redirectURI string) string {
	if clientID != p.cfg.ClientID {
		return "devgithub: unknown client_id"
	}
	if redirectURI != "" && redirectURI != p.cfg.CallbackURL {
		return "devgithub: redirect_uri does not match the registered callback URL"
	}
	return ""
}

func (p *Provider) page(v url.Values, login, errMsg string) AuthorizePage {
	return AuthorizePage{
		Action:      p.cfg.Prefix + "/login/oauth/authorize",
		ClientID:    v.Get("client_id"),
		RedirectURI: v.Get("redirect_uri"),
		State:       v.Get("state"),
		Scope:       v.Get("scope"),
		Login:       login,

		CodeChallenge:       v.Get("code_challenge"),
		CodeChallengeMethod: v.Get("code_challenge_method"),
		Error:               errMsg,
	}
}

// render writes the page whole or not at all, so a template error never
// leaves half a form behind a 200.
func (p *Provider) render(w http.ResponseWriter, status int, page AuthorizePage) {
	var buf bytes.Buffer
	if err := p.cfg.Render(&buf, page); err != nil {
		http.Error(w, "devgithub: cannot render the sign-in page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// A sign-in form inside someone else's frame is a clickjacking target.
	h.Set("X-Frame-Options", "DENY")
	// Keep a policy the app already set (it is stricter); add one only
	// where the provider is served alone.
	if h.Get("Content-Security-Policy") == "" {
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	}
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// callback returns the callback URL carrying params and, as GitHub does,
// the state only when the client sent one.
func (p *Provider) callback(state string, params url.Values) string {
	u, _ := url.Parse(p.cfg.CallbackURL) // parsed once already in New
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// checkChallenge returns why a PKCE challenge is refused, or "". Like
// GitHub, the provider takes a request without one; a challenge must be an
// S256 one (43 base64url characters: a SHA-256), since "plain" would send
// the verifier itself through the browser.
func checkChallenge(challenge, method string) string {
	switch {
	case challenge == "" && method == "":
		return ""
	case method != "S256":
		return "devgithub: code_challenge_method must be S256"
	case len(challenge) != 43 || strings.Trim(challenge, base64URLChars) != "":
		return "devgithub: code_challenge is not a base64url SHA-256"
	}
	return ""
}

// base64URLChars is the alphabet of unpadded base64url.
const base64URLChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// validLogin reports whether s follows GitHub's user name rules.
func validLogin(s string) bool {
	if len(s) < 1 || len(s) > 39 || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
