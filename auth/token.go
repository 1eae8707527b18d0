package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenAudience and tokenIssuer pin what a headcount token is for; a JWT
// minted for anything else is foreign and refused.
const (
	tokenAudience = "headcount/events"
	tokenIssuer   = "headcount"
)

// Tokens issues and checks bearer tokens for command-line clients: JWTs
// signed with HS256 under a key derived from the session secret. The
// algorithm is pinned, and exp, aud, iss and sub are required.
type Tokens struct {
	key    []byte
	ttl    time.Duration
	parser *jwt.Parser
	// now is the clock; tests move it.
	now func() time.Time
}

// claims is a token's body: the registered claims plus the user's profile,
// so a stream needs no lookup to know who is on it.
type claims struct {
	jwt.RegisteredClaims
	Login     string `json:"login"`
	Name      string `json:"name,omitempty"`
	AvatarURL string `json:"avatar_url,omitempty"`
}

// NewTokens returns Tokens keyed by secret whose tokens live ttl.
func NewTokens(secret []byte, ttl time.Duration) *Tokens {
	return newTokens(secret, ttl, time.Now)
}

func newTokens(secret []byte, ttl time.Duration, now func() time.Time) *Tokens {
	return &Tokens{
		key: deriveKey(secret, "bearer token", 32),
		ttl: ttl,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithAudience(tokenAudience),
			jwt.WithIssuer(tokenIssuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(now),
		),
		now: now,
	}
}

// Issue returns a token for u and when it expires.
func (t *Tokens) Issue(u User) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(t.ttl).Truncate(time.Second)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   u.ID,
			Audience:  jwt.ClaimStrings{tokenAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Login:     u.Login,
		Name:      u.Name,
		AvatarURL: u.AvatarURL,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// Verify returns the user a token was issued to. Any error means the token
// is not ours, not intact, or no longer valid.
func (t *Tokens) Verify(token string) (User, error) {
	var c claims
	if _, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.key, nil }); err != nil {
		return User{}, fmt.Errorf("bearer token: %w", err)
	}
	u := User{ID: c.Subject, Login: c.Login, Name: c.Name, AvatarURL: c.AvatarURL}
	if !u.Valid() {
		return User{}, errors.New("bearer token: no user")
	}
	return u, nil
}
