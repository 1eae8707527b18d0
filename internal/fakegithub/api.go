package fakegithub

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const restDoc = "https://docs.github.com/rest"

// apiUser is the authenticated-user object of GET /user, trimmed to the
// fields a sign-in reads plus the ones that tell a user from an org.
type apiUser struct {
	Login     string  `json:"login"`
	ID        int64   `json:"id"`
	NodeID    string  `json:"node_id"`
	AvatarURL string  `json:"avatar_url"`
	HTMLURL   string  `json:"html_url"`
	Type      string  `json:"type"`
	SiteAdmin bool    `json:"site_admin"`
	Name      *string `json:"name"`
	Email     *string `json:"email"`
	Bio       *string `json:"bio"`
	Location  *string `json:"location"`
}

// apiEmail is one entry of GET /user/emails.
type apiEmail struct {
	Email      string  `json:"email"`
	Primary    bool    `json:"primary"`
	Verified   bool    `json:"verified"`
	Visibility *string `json:"visibility"`
}

func (s *Server) serveUser(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	status := s.profileStatus
	s.mu.Unlock()
	if status != 0 {
		writeAPIError(w, status, http.StatusText(status), restDoc)
		return
	}
	g, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	u := g.user
	writeJSON(w, http.StatusOK, apiUser{
		Login:     u.Login,
		ID:        u.ID,
		NodeID:    "U_fake" + strconv.FormatInt(u.ID, 10),
		AvatarURL: u.AvatarURL,
		HTMLURL:   "https://github.com/" + u.Login,
		Type:      "User",
		Name:      nullable(u.Name),
		Email:     nullable(u.Email),
	})
}

func (s *Server) serveEmails(w http.ResponseWriter, r *http.Request) {
	g, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	// Without the scope GitHub hides the list rather than forbid it.
	if !slices.Contains(g.scopes, "user:email") && !slices.Contains(g.scopes, "user") {
		writeAPIError(w, http.StatusNotFound, "Not Found",
			restDoc+"/users/emails#list-email-addresses-for-the-authenticated-user")
		return
	}
	list := make([]apiEmail, 0, len(g.user.Emails))
	for _, e := range g.user.Emails {
		var visibility *string
		if e.Primary {
			visibility = nullable("private")
			if e.Email == g.user.Email {
				visibility = nullable("public")
			}
		}
		list = append(list, apiEmail{Email: e.Email, Primary: e.Primary, Verified: e.Verified, Visibility: visibility})
	}
	writeJSON(w, http.StatusOK, list)
}

// authenticate returns what the request's token grants, or answers 401
// with GitHub's body and returns false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (grant, bool) {
	header := r.Header.Get("Authorization")
	if header == "" {
		writeAPIError(w, http.StatusUnauthorized, "Requires authentication", restDoc)
		return grant{}, false
	}
	scheme, token, _ := strings.Cut(header, " ")
	s.mu.Lock()
	g, ok := s.tokens[strings.TrimSpace(token)]
	s.mu.Unlock()
	if !ok || !(strings.EqualFold(scheme, "bearer") || strings.EqualFold(scheme, "token")) {
		writeAPIError(w, http.StatusUnauthorized, "Bad credentials", restDoc)
		return grant{}, false
	}
	return g, true
}

// serveAvatar stands in for avatars.githubusercontent.com with a small
// PNG whose colour comes from the id.
func (s *Server) serveAvatar(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	fill := color.RGBA{R: uint8(id * 97), G: uint8(id * 57), B: uint8(id * 31), A: 255}
	for y := range 16 {
		for x := range 16 {
			img.Set(x, y, fill)
		}
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=300")
	_ = png.Encode(w, img)
}

func writeAPIError(w http.ResponseWriter, status int, message, doc string) {
	writeJSON(w, status, map[string]string{
		"message":           message,
		"documentation_url": doc,
		"status":            strconv.Itoa(status),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// nullable is s, or JSON null when s is empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
