package auth

import "errors"

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

// Valid reports whether u names someone: a profile, cookie or token
// without an id or a login is never a user.
func (u User) Valid() bool { return u.ID != "" && u.ID != "0" && u.Login != "" }

// ErrNoCredentials means the request carries neither a session nor a token.
var ErrNoCredentials = errors.New("not signed in")
