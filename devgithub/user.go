package devgithub

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"strings"
)

// profile is the part of GitHub's user object that goth reads.
type profile struct {
	ID        int64   `json:"id"`
	Login     string  `json:"login"`
	Name      string  `json:"name"`
	AvatarURL string  `json:"avatar_url"`
	Email     *string `json:"email"` // null: GitHub's answer for a private address
}

// email is one entry of GitHub's email list.
type email struct {
	Email      string `json:"email"`
	Primary    bool   `json:"primary"`
	Verified   bool   `json:"verified"`
	Visibility string `json:"visibility"`
}

func (p *Provider) serveUser(w http.ResponseWriter, r *http.Request) {
	a, ok := p.authenticate(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, profile{
		ID:        userID(a.Login),
		Login:     a.Login,
		Name:      a.Login,
		AvatarURL: p.cfg.BaseURL + p.cfg.Prefix + "/avatars/" + a.Login + ".svg",
	})
}

func (p *Provider) serveEmails(w http.ResponseWriter, r *http.Request) {
	a, ok := p.authenticate(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, []email{{
		Email:      strings.ToLower(a.Login) + "@users.noreply.localhost",
		Primary:    true,
		Verified:   true,
		Visibility: "private",
	}})
}

// authenticate returns the access the request's token grants, or answers
// 401 as GitHub does and returns false.
func (p *Provider) authenticate(w http.ResponseWriter, r *http.Request) (access, bool) {
	var a access
	err := p.codec.Decode(tokenName, bearer(r), &a)
	if err != nil || p.expired(a.Expires) || !validLogin(a.Login) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"message":           "Bad credentials",
			"documentation_url": "https://docs.github.com/rest",
		})
		return access{}, false
	}
	return a, true
}

// bearer returns the token of an "Authorization: Bearer <token>" header, or
// of the older "token <token>" form GitHub also accepts.
func bearer(r *http.Request) string {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if strings.EqualFold(scheme, "bearer") || strings.EqualFold(scheme, "token") {
		return strings.TrimSpace(token)
	}
	return ""
}

// userID derives a stable positive id from the login. GitHub logins are
// case-insensitive, so "Alice" and "alice" are one user.
func userID(login string) int64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(login)))
	return int64(h.Sum32()) + 1 // never 0, which would read as "no id"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
