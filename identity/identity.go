// Package identity builds how people sign in: goth's GitHub provider,
// pointed at GitHub (or a GitHub Enterprise) or, in dev sign-in mode, at
// headcount's own development provider (devgithub), which it builds too.
// Either way the same goth code path runs: authorize, code, token, profile.
package identity

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/markbates/goth/providers/github"
	"golang.org/x/oauth2"

	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/devgithub"
)

// providerTimeout bounds each call of the provider to GitHub (or to the
// dev provider).
const providerTimeout = 10 * time.Second

// devClientID is the OAuth client id of headcount at its own dev provider.
const devClientID = "headcount-dev"

// Mount is where headcount serves sign-in, known once it listens.
type Mount struct {
	// PublicURL is headcount's public base URL, without a trailing slash.
	PublicURL string
	// CallbackURL is the OAuth callback, under PublicURL.
	CallbackURL string
	// Listening is the address headcount listens on. In dev mode goth's
	// server-to-server calls reach the dev provider there, over loopback,
	// whatever PublicURL says.
	Listening net.Addr
	// DevPrefix is the path the dev provider is mounted under.
	DevPrefix string
	// RenderDevAuthorize renders the dev provider's sign-in form.
	RenderDevAuthorize func(io.Writer, devgithub.AuthorizePage) error
	// OwnCertificate, when headcount serves HTTPS itself, returns the
	// certificate it serves now. Dev mode's server-to-server calls then go
	// over HTTPS to Listening and accept exactly that certificate (it need
	// not name the loopback address).
	OwnCertificate func() *tls.Certificate
}

// Identity is the sign-in provider, ready for the sign-in handlers.
type Identity struct {
	// Provider is goth's GitHub provider, with an HTTP client of its own.
	Provider *github.Provider
	// ProfileURL is where Provider reads profiles; avatars of a plain-http
	// GitHub Enterprise come from its origin.
	ProfileURL string
	// Exchange is the provider's OAuth app as golang.org/x/oauth2 sees it:
	// the code exchange goes through it, with the PKCE verifier, which
	// goth cannot send.
	Exchange *oauth2.Config
	// Dev serves the development provider under Mount.DevPrefix; nil
	// unless in dev sign-in mode.
	Dev http.Handler
	// DirectHosts, in dev sign-in mode without HEADCOUNT_DEV_LOGIN=1, is
	// every Host a request made straight to the loopback listener carries;
	// sign-in refuses any other, and anything that came through a proxy.
	// nil when there is nothing to refuse.
	DirectHosts []string

	transport *http.Transport
}

// New builds the provider cfg asks for: GitHub's (cfg.GitHubKey and the
// GITHUB_*_URL endpoints), or in dev sign-in mode the development
// provider, keyed with the session secret, mounted at m.
func New(cfg config.Config, m Mount) (*Identity, error) {
	key, secret := cfg.GitHubKey, cfg.GitHubSecret
	authURL, tokenURL, profileURL, emailURL := cfg.GitHubAuthURL, cfg.GitHubTokenURL, cfg.GitHubProfileURL, cfg.GitHubEmailURL
	id := &Identity{}
	if cfg.DevMode() {
		tcp, ok := m.Listening.(*net.TCPAddr)
		if !ok {
			return nil, errors.New("dev sign-in: needs the TCP address headcount listens on")
		}
		key, secret = devClientID, randomHex(16)
		dev, err := devgithub.New(devgithub.Config{
			BaseURL:      m.PublicURL,
			Prefix:       m.DevPrefix,
			ClientID:     key,
			ClientSecret: secret,
			CallbackURL:  m.CallbackURL,
			Key:          cfg.SessionSecret,
			Render:       m.RenderDevAuthorize,
		})
		if err != nil {
			return nil, fmt.Errorf("dev sign-in: %w", err)
		}
		scheme := "http"
		if m.OwnCertificate != nil {
			scheme = "https"
		}
		origin := scheme + "://" + loopbackAddr(tcp)
		authURL, tokenURL, profileURL, emailURL = dev.AuthURL(), dev.TokenURL(origin), dev.ProfileURL(origin), dev.EmailURL(origin)
		id.Dev = dev
		if !cfg.DevLogin {
			id.DirectHosts = directHosts(tcp, m.PublicURL)
		}
	}
	scopes := []string{"read:user", "user:email"}
	provider := github.NewCustomisedURL(key, secret, m.CallbackURL, authURL, tokenURL, profileURL, emailURL, scopes...)
	id.Exchange = &oauth2.Config{
		ClientID:     key,
		ClientSecret: secret,
		RedirectURL:  m.CallbackURL,
		Endpoint:     oauth2.Endpoint{AuthURL: authURL, TokenURL: tokenURL},
		Scopes:       scopes,
	}
	// Its own transport, not http.DefaultTransport's shared pool, so Close
	// can drop the connections it keeps to GitHub (or, in dev mode, to us).
	id.transport = http.DefaultTransport.(*http.Transport).Clone()
	if cfg.DevMode() && m.OwnCertificate != nil {
		id.transport.TLSClientConfig = pinnedTo(m.OwnCertificate)
	}
	provider.HTTPClient = &http.Client{Timeout: providerTimeout, Transport: id.transport}
	id.Provider, id.ProfileURL = provider, profileURL
	return id, nil
}

// pinnedTo is a TLS client configuration that accepts only the server
// certificate own returns: headcount calling itself over loopback.
func pinnedTo(own func() *tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain and name checks are replaced by the pin below: the
		// certificate is for the public name, the call goes to 127.0.0.1.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			c := own()
			if len(raw) == 0 || c == nil || len(c.Certificate) == 0 || !bytes.Equal(raw[0], c.Certificate[0]) {
				return errors.New("dev sign-in: the loopback server does not serve this headcount's certificate")
			}
			return nil
		},
	}
}

// Close drops the idle connections the provider keeps; call it once the
// HTTP server has stopped.
func (id *Identity) Close() { id.transport.CloseIdleConnections() }

// loopbackAddr is how headcount reaches itself: its own address, or the
// loopback of the same family when it listens on every interface.
func loopbackAddr(a *net.TCPAddr) string {
	ip := a.IP
	switch {
	case ip.IsUnspecified() && ip.To4() == nil:
		ip = net.IPv6loopback
	case ip.IsUnspecified():
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// directHosts is every Host a browser on this machine sends to a listener
// at addr: its port on each loopback name, and the base URL's own host
// when that is loopback.
func directHosts(addr *net.TCPAddr, baseURL string) []string {
	port := strconv.Itoa(addr.Port)
	hosts := []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port}
	if !addr.IP.IsUnspecified() {
		hosts = append(hosts, strings.ToLower(net.JoinHostPort(addr.IP.String(), port)))
	}
	if u, err := url.Parse(baseURL); err == nil && loopbackURL(baseURL) {
		h := strings.ToLower(u.Host)
		if u.Port() == "" {
			h += map[string]string{"http": ":80", "https": ":443"}[u.Scheme]
			hosts = append(hosts, strings.ToLower(u.Host))
		}
		hosts = append(hosts, h)
	}
	return hosts
}

// loopbackURL reports whether u is an absolute URL on a loopback host.
func loopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return false
	}
	h := p.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
