package auth

import (
	"errors"
	"fmt"
	"strings"
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
// algorithm is pinned, exp, aud, iss and sub are required, and every part
// must be canonical base64.
type Tokens struct {
	key    []byte
	ttl    time.Duration
	parser *jwt.Parser
	// now is the clock; tests move it.
	now func() time.Time
}

// claims is a token's body: the registered claims, the user's profile, so
// a stream needs no lookup to know who is on it, and the session that
// minted it, so revoking the session revokes the token. The registered
// claims are plain fields, not jwt.RegisteredClaims: its dates decode
// through a json.Unmarshal each, and Verify runs on every command-line
// stream's connect (BenchmarkVerify). The fields and their order are
// those of jwt.RegisteredClaims, so a token reads as it always did.
type claims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.ClaimStrings `json:"aud"`
	ExpiresAt int64            `json:"exp"` // Unix seconds; 0: none
	IssuedAt  int64            `json:"iat"` // Unix seconds; 0: none
	Login     string           `json:"login"`
	Name      string           `json:"name,omitempty"`
	AvatarURL string           `json:"avatar_url,omitempty"`
	// SessionID and SessionStart (Unix milliseconds) name the session.
	SessionID    string `json:"sid"`
	SessionStart int64  `json:"sat"`
}

// The jwt.Claims methods, for the parser's checks.
func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) { return date(c.ExpiresAt), nil }
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error)       { return date(c.IssuedAt), nil }
func (c *claims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (c *claims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *claims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *claims) GetAudience() (jwt.ClaimStrings, error)       { return c.Audience, nil }

// date is a claim's Unix seconds as the parser takes them: nil for none.
func date(unix int64) *jwt.NumericDate {
	if unix == 0 {
		return nil
	}
	return jwt.NewNumericDate(time.Unix(unix, 0))
}

// maxTokenLen bounds the tokens Verify parses; a real one is well under
// 2 KB even for the longest profile.
const maxTokenLen = 4096

// NewTokens returns Tokens keyed by secret whose tokens live ttl.
func NewTokens(secret []byte, ttl time.Duration) *Tokens {
	return newTokens(secret, ttl, time.Now)
}

func newTokens(secret []byte, ttl time.Duration, now func() time.Time) *Tokens {
	return &Tokens{
		key: DeriveKey(secret, "bearer token", 32),
		ttl: ttl,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithAudience(tokenAudience),
			jwt.WithIssuer(tokenIssuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			// One spelling per token: base64 leaves the last character's
			// low bits unused, and a lax decoder takes a token with them
			// set (a different string) as the same token.
			jwt.WithStrictDecoding(),
			jwt.WithTimeFunc(now),
		),
		now: now,
	}
}

// Issue returns a token minted from sess and when it expires: after the
// token lifetime, or with the session if that comes first, so a token never
// outlives the session it stands for.
func (t *Tokens) Issue(sess Session) (string, time.Time, error) {
	now := t.now()
	u := sess.User
	exp := now.Add(t.ttl).Truncate(time.Second)
	if end := sess.Expires().Truncate(time.Second); end.Before(exp) {
		exp = end
	}
	c := claims{
		Issuer:       tokenIssuer,
		Subject:      u.ID,
		Audience:     jwt.ClaimStrings{tokenAudience},
		ExpiresAt:    exp.Unix(),
		IssuedAt:     now.Unix(),
		Login:        u.Login,
		Name:         u.Name,
		AvatarURL:    u.AvatarURL,
		SessionID:    sess.ID,
		SessionStart: sess.Start,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, &c).SignedString(t.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// Verify returns the session a token was minted from. Any error means the
// token is not ours, not intact, or no longer valid; whether its session
// was revoked is Revocations' to say.
func (t *Tokens) Verify(token string) (Session, error) {
	if len(token) > maxTokenLen {
		return Session{}, errors.New("bearer token: too long")
	}
	var c claims
	if _, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.key, nil }); err != nil {
		return Session{}, fmt.Errorf("bearer token: %w", err)
	}
	sess := Session{
		ID:    c.SessionID,
		User:  User{ID: c.Subject, Login: c.Login, Name: c.Name, AvatarURL: c.AvatarURL},
		Start: c.SessionStart,
	}
	if !sess.valid() {
		return Session{}, errors.New("bearer token: no session")
	}
	return sess, nil
}

// Bearer takes the token out of an Authorization header value. ok is
// false unless the scheme is Bearer (any case) with a token after it;
// the token is then the rest of the value, trimmed.
func Bearer(header string) (token string, ok bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(header), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(rest)
	return token, token != ""
}

// IsBearer reports whether an Authorization header value uses the Bearer
// scheme, with or without a usable token: such a request is judged by its
// bearer alone. Any other scheme (a proxy's Basic, say) is not ours.
func IsBearer(header string) bool {
	scheme, _, _ := strings.Cut(strings.TrimSpace(header), " ")
	return strings.EqualFold(scheme, "Bearer")
}
