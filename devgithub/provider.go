// Package devgithub is headcount's built-in development identity provider:
// a small server that speaks GitHub's OAuth and user API well enough for
// goth's GitHub provider, so the real sign-in code path runs on a fresh
// machine with no OAuth app. Anyone may sign in as any user name; it exists
// for development only.
//
// It keeps no state: authorization codes and access tokens are values
// signed and encrypted with keys derived from Config.Key, which is why a
// code can be replayed until it expires (ten minutes). GitHub codes are
// single-use; for a development provider that trade keeps it free of any
// mutable map.
package devgithub

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// How long the signed values stay valid. A code lives as long as GitHub's;
// a token long enough for a development session, short enough that a leaked
// one soon stops working.
const (
	codeTTL  = 10 * time.Minute
	tokenTTL = time.Hour
)

// The names under which codes and tokens are signed. securecookie binds the
// name into the MAC, so a code can never be presented as a token or the
// other way round.
const (
	codeName  = "devgithub-code"
	tokenName = "devgithub-token"
)

// Config says where the provider is mounted and whom it serves.
type Config struct {
	// BaseURL is the public URL of headcount, e.g. "http://localhost:8080";
	// avatar URLs and the browser-facing authorize URL are built from it.
	BaseURL string
	// Prefix is the path the provider is mounted under, e.g. "/dev/github".
	Prefix string
	// ClientID and ClientSecret are the only client credentials accepted.
	ClientID     string
	ClientSecret string
	// CallbackURL is the only redirect_uri accepted, so the provider can
	// never be used as an open redirect.
	CallbackURL string
	// Key keys the codes and tokens; it must be at least 32 bytes.
	Key []byte
	// Render renders the sign-in form page; the app supplies its templates.
	Render func(w io.Writer, page AuthorizePage) error
	// Now tells the time codes and tokens are checked against; nil means
	// time.Now; for tests.
	Now func() time.Time
}

// Provider serves the development identity provider's routes. It is safe
// for concurrent use.
type Provider struct {
	cfg   Config
	codec *securecookie.SecureCookie
	mux   *http.ServeMux
}

// New checks cfg and returns a provider serving it.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("devgithub: %w", err)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	codec, err := newCodec(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("devgithub: %w", err)
	}
	p := &Provider{cfg: cfg, codec: codec, mux: http.NewServeMux()}
	p.routes()
	return p, nil
}

func (c Config) validate() error {
	if err := checkAbsoluteURL(c.BaseURL); err != nil {
		return fmt.Errorf("bad BaseURL: %w", err)
	}
	if err := checkAbsoluteURL(c.CallbackURL); err != nil {
		return fmt.Errorf("bad CallbackURL: %w", err)
	}
	// The prefix becomes part of ServeMux patterns, so it is held to plain
	// path characters that mean nothing special there.
	if !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") ||
		path.Clean(c.Prefix) != c.Prefix || strings.ContainsAny(c.Prefix, "{}$ \t\r\n%?#") {
		return fmt.Errorf("bad Prefix %q: want a clean path such as /dev/github", c.Prefix)
	}
	switch {
	case c.ClientID == "":
		return errors.New("empty ClientID")
	case c.ClientSecret == "":
		return errors.New("empty ClientSecret")
	case len(c.Key) < 32:
		return fmt.Errorf("short Key: %d bytes, want at least 32", len(c.Key))
	case c.Render == nil:
		return errors.New("nil Render")
	}
	return nil
}

func checkAbsoluteURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return nil
}

// newCodec derives separate MAC and encryption keys from key, so one secret
// never serves two purposes.
func newCodec(key []byte) (*securecookie.SecureCookie, error) {
	hashKey, err := hkdf.Key(sha256.New, key, nil, "headcount devgithub hmac", 32)
	if err != nil {
		return nil, err
	}
	blockKey, err := hkdf.Key(sha256.New, key, nil, "headcount devgithub aes", 32)
	if err != nil {
		return nil, err
	}
	// Expiry is carried inside each value and checked against Config.Now,
	// so securecookie's own wall-clock age check is turned off.
	return securecookie.New(hashKey, blockKey).
		SetSerializer(securecookie.JSONEncoder{}).
		MaxAge(0), nil
}

func (p *Provider) routes() {
	pre := p.cfg.Prefix
	p.mux.HandleFunc("GET "+pre+"/login/oauth/authorize", p.serveAuthorizeForm)
	p.mux.Handle("POST "+pre+"/login/oauth/authorize",
		http.NewCrossOriginProtection().Handler(http.HandlerFunc(p.serveAuthorizeDecision)))
	p.mux.HandleFunc("POST "+pre+"/login/oauth/access_token", p.serveAccessToken)
	p.mux.HandleFunc("GET "+pre+"/user", p.serveUser)
	p.mux.HandleFunc("GET "+pre+"/user/emails", p.serveEmails)
	p.mux.HandleFunc("GET "+pre+"/avatars/{file}", p.serveAvatar)
}

// ServeHTTP serves the provider's routes; request paths include Prefix.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mux.ServeHTTP(w, r)
}

// AuthURL is the browser-facing authorize URL, built on BaseURL.
func (p *Provider) AuthURL() string {
	return p.cfg.BaseURL + p.cfg.Prefix + "/login/oauth/authorize"
}

// TokenURL is the token endpoint as the server reaches itself at origin,
// e.g. "http://127.0.0.1:43567": the exchange is server to server and need
// not go through the public URL.
func (p *Provider) TokenURL(origin string) string {
	return strings.TrimSuffix(origin, "/") + p.cfg.Prefix + "/login/oauth/access_token"
}

// ProfileURL is the user API endpoint as the server reaches itself at origin.
func (p *Provider) ProfileURL(origin string) string {
	return strings.TrimSuffix(origin, "/") + p.cfg.Prefix + "/user"
}

// EmailURL is the email API endpoint as the server reaches itself at origin.
func (p *Provider) EmailURL(origin string) string {
	return strings.TrimSuffix(origin, "/") + p.cfg.Prefix + "/user/emails"
}
