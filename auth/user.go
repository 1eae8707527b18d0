package auth

import (
	"errors"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// User is what headcount keeps of a signed-in person: their GitHub
// identity, nothing more.
type User struct {
	// ID is GitHub's numeric user id, as a decimal string.
	ID string `json:"id"`
	// Login is the GitHub user name.
	Login string `json:"login"`
	// Name is the display name; it may be empty.
	Name string `json:"name,omitempty"`
	// AvatarURL is the picture to show; it may be empty.
	AvatarURL string `json:"avatar_url,omitempty"`
}

// The longest profile fields kept. GitHub allows 39 characters of login;
// its ids are decimal numbers far below 20 digits. A name is cut, a URL
// that is too long is dropped (half a URL points nowhere).
const (
	MaxIDLen        = 20
	MaxLoginLen     = 39
	MaxNameRunes    = 100
	MaxAvatarURLLen = 2048
)

// Valid reports whether u names someone: a profile, cookie or token
// without an id or a login is never a user.
func (u User) Valid() bool { return u.ID != "" && u.ID != "0" && u.Login != "" }

// Cut returns u with every field held to its limit, so any profile GitHub
// (or a hostile provider) sends fits in a cookie: an id or login that no
// GitHub account could have is emptied (the user is then not Valid), the
// name loses control characters and is cut to MaxNameRunes, and an avatar
// URL that is not an absolute http(s) URL of at most MaxAvatarURLLen bytes
// is dropped.
func (u User) Cut() User {
	if !decimal(u.ID) || len(u.ID) > MaxIDLen {
		u.ID = ""
	}
	if len(u.Login) > MaxLoginLen || !printableASCII(u.Login) {
		u.Login = ""
	}
	u.Name = cutName(u.Name)
	u.AvatarURL = cutURL(u.AvatarURL)
	return u
}

func decimal(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// printableASCII admits what a GitHub login is made of (and a little
// more): no spaces, quotes, control characters or anything non-ASCII.
func printableASCII(s string) bool {
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func cutName(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == MaxNameRunes {
			break
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

func cutURL(s string) string {
	if s == "" || len(s) > MaxAvatarURLLen {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return ""
	}
	out := u.String()
	if len(out) > MaxAvatarURLLen || !printableASCII(out) {
		return ""
	}
	return out
}

// ErrNoCredentials means the request carries neither a session nor a token.
var ErrNoCredentials = errors.New("not signed in")
