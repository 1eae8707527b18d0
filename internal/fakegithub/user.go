package fakegithub

import (
	"strconv"
	"strings"
)

// User is a GitHub account as the API shows it.
type User struct {
	// ID and Login are required.
	ID    int64
	Login string
	// Name is the display name; empty is answered as null, as GitHub does
	// for accounts without one.
	Name string
	// AvatarURL defaults to an image this server serves, so a browser
	// under test never leaves the machine.
	AvatarURL string
	// Email is the public profile address; empty is answered as null, as
	// for GitHub users who keep their address private.
	Email string
	// Emails is what GET /user/emails lists. Nil means one primary,
	// verified address: Email if set, else GitHub's noreply address. A
	// non-nil empty slice lists none.
	Emails []Email
}

// Email is one address of GET /user/emails.
type Email struct {
	Email    string
	Primary  bool
	Verified bool
}

// complete fills in the defaults documented on User.
func (s *Server) complete(u User) User {
	id := strconv.FormatInt(u.ID, 10)
	if u.AvatarURL == "" {
		u.AvatarURL = s.URL + "/avatars/u/" + id + "?v=4"
	}
	if u.Emails == nil {
		addr := u.Email
		if addr == "" {
			addr = id + "+" + strings.ToLower(u.Login) + "@users.noreply.github.com"
		}
		u.Emails = []Email{{Email: addr, Primary: true, Verified: true}}
	}
	return u
}
