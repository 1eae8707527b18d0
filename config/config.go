// Package config reads and checks headcount's settings from the environment,
// in one place, before anything starts.
package config

import (
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/headcount/headcount/internal/fdlimit"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// GitHub's own endpoints, used when no GITHUB_*_URL variable overrides them.
const (
	DefaultGitHubAuthURL    = "https://github.com/login/oauth/authorize"
	DefaultGitHubTokenURL   = "https://github.com/login/oauth/access_token"
	DefaultGitHubProfileURL = "https://api.github.com/user"
	DefaultGitHubEmailURL   = "https://api.github.com/user/emails"
)

// Defaults for the settings that have one.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultHeartbeat         = 15 * time.Second
	DefaultTokenTTL          = time.Hour
	DefaultMaxStreamsPerUser = 32
	// MinSecretLen is the shortest HEADCOUNT_SESSION_SECRET accepted, in bytes.
	MinSecretLen = 32
)

// Settings with no variable of their own, fixed here so every part of the
// program reads them from Config rather than keeping a copy.
const (
	// DeadPeerGrace is how long a connection's sent data may go
	// unacknowledged before the kernel drops it (TCP_USER_TIMEOUT). A
	// vanished client is sent a heartbeat within one interval, which is
	// never acknowledged, so it is counted out within a heartbeat plus
	// this. (A timeout of Heartbeat + DeadPeerGrace made that two
	// heartbeats plus this: the timer starts at the first unacknowledged
	// byte, which is already a heartbeat after the cut.)
	DeadPeerGrace = 10 * time.Second
	// ShutdownTimeout bounds a graceful stop, every part of it (the HTTP
	// server, the hub, the shared count): five seconds are allowed from
	// the signal to the exit, and the process needs a little of them
	// after the server has stopped.
	ShutdownTimeout = 4 * time.Second
)

// Config holds every setting of the README's configuration table, parsed
// and checked, with every default resolved. The zero value is not useful;
// build one with Load.
type Config struct {
	// Addr is the listen address (HEADCOUNT_ADDR).
	Addr string
	// BaseURL is the public URL without a trailing slash (HEADCOUNT_BASE_URL).
	// Empty means "http://localhost:<port the listener got>": PublicURL
	// resolves it once the program listens (the port may be 0 in tests).
	BaseURL string
	// SessionSecret keys cookies and bearer tokens (HEADCOUNT_SESSION_SECRET).
	SessionSecret []byte
	// GitHubKey and GitHubSecret are the OAuth app's credentials; an empty
	// key means dev sign-in mode.
	GitHubKey, GitHubSecret string
	// GitHub endpoints (GITHUB_AUTH_URL, GITHUB_TOKEN_URL, GITHUB_PROFILE_URL,
	// GITHUB_EMAIL_URL).
	GitHubAuthURL, GitHubTokenURL, GitHubProfileURL, GitHubEmailURL string
	// RedisURL, when set, makes every instance on it share one count.
	RedisURL string
	// Heartbeat is the interval of SSE comment keep-alives.
	Heartbeat time.Duration
	// DeadPeerTimeout is the TCP_USER_TIMEOUT of every accepted
	// connection: DeadPeerGrace.
	DeadPeerTimeout time.Duration
	// TokenTTL is the lifetime of bearer tokens.
	TokenTTL time.Duration
	// MaxStreamsPerUser caps the streams one user holds at once; 0 = no limit.
	MaxStreamsPerUser int
	// MaxStreams caps the streams this instance accepts; 0 = no limit.
	// Unset, it is StreamLimitFor(OpenFileLimit).
	MaxStreams int
	// OpenFileLimit is the process's open-file limit when Load ran (0 if
	// unknown); the default MaxStreams is derived from it.
	OpenFileLimit uint64
	// ShutdownTimeout bounds a graceful stop (the constant ShutdownTimeout).
	ShutdownTimeout time.Duration
	// MaxOtherConns caps the connections that hold no stream:
	// OtherConnLimitFor(OpenFileLimit, MaxStreams); 0 means no cap.
	MaxOtherConns int
	// DevLogin allows dev sign-in mode on a non-loopback address
	// (HEADCOUNT_DEV_LOGIN=1).
	DevLogin bool
	// TLSCert and TLSKey are PEM files (HEADCOUNT_TLS_CERT,
	// HEADCOUNT_TLS_KEY); with both set the server speaks HTTPS and HTTP/2.
	TLSCert, TLSKey string
	// MetricsAddr, when set, is the only address that serves /metrics
	// (HEADCOUNT_METRICS_ADDR).
	MetricsAddr string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (HEADCOUNT_TRUSTED_PROXIES); empty trusts none.
	TrustedProxies []netip.Prefix
	// LogFormat is "text" or "json" (HEADCOUNT_LOG_FORMAT).
	LogFormat string
	// LogLevel is the least level logged (HEADCOUNT_LOG_LEVEL).
	LogLevel slog.Level
	// PresenceCountOnly keeps every identity in the server
	// (HEADCOUNT_PRESENCE=count): no "user" events, an empty people list.
	PresenceCountOnly bool
}

// TLS reports whether the server serves HTTPS itself.
func (c Config) TLS() bool { return c.TLSCert != "" }

// DevMode reports whether sign-in goes through the built-in development
// identity provider instead of GitHub.
func (c Config) DevMode() bool { return c.GitHubKey == "" }

// PublicURL is BaseURL, or, when it is not set, http://localhost (https
// with TLS) with the port of addr, the address the program listens on.
func (c Config) PublicURL(addr net.Addr) string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	port := 0
	if a, ok := addr.(*net.TCPAddr); ok {
		port = a.Port
	}
	scheme := "http"
	if c.TLS() {
		scheme = "https"
	}
	return fmt.Sprintf("%s://localhost:%d", scheme, port)
}

// Secure reports whether the public URL is https, which makes every
// cookie Secure (and __Host- named): an https base URL, or TLS served
// here with no base URL set.
func (c Config) Secure() bool {
	return strings.HasPrefix(c.BaseURL, "https://") || (c.BaseURL == "" && c.TLS())
}

// Load reads the environment through getenv and returns the checked
// configuration with every default resolved, so nothing downstream
// interprets a missing value. An error names the variable at fault in one
// line. The default stream limit follows the open-file limit in force, so
// a program that raises its limit (fdlimit.Raise) does so before Load.
func Load(getenv func(string) string) (Config, error) {
	var c Config
	// Read first: HEADCOUNT_MAX_STREAMS's default follows from it.
	c.OpenFileLimit, _ = fdlimit.Current()
	for _, v := range Variables() {
		if err := v.parse(&c, getenv(v.Name)); err != nil {
			return Config{}, err
		}
	}
	if err := c.check(); err != nil {
		return Config{}, err
	}
	if err := CheckMaxStreams(c.MaxStreams, c.OpenFileLimit); err != nil {
		return Config{}, err
	}
	c.DeadPeerTimeout = DeadPeerGrace
	c.ShutdownTimeout = ShutdownTimeout
	c.MaxOtherConns = OtherConnLimitFor(c.OpenFileLimit, c.MaxStreams)
	return c, nil
}

// check refuses combinations of values that are each fine alone.
func (c *Config) check() error {
	if c.GitHubKey != "" && c.GitHubSecret == "" {
		return errors.New("GITHUB_SECRET: required when GITHUB_KEY is set")
	}
	if c.GitHubKey == "" && c.GitHubSecret != "" {
		return errors.New("GITHUB_KEY: required when GITHUB_SECRET is set")
	}
	switch {
	case c.SessionSecret == nil && c.RedisURL != "":
		return fmt.Errorf("HEADCOUNT_SESSION_SECRET: required (at least %d bytes) with HEADCOUNT_REDIS_URL: every instance on the Redis must accept the sessions and tokens the others made, so they must share one secret (e.g. openssl rand -hex 32)", MinSecretLen)
	case c.SessionSecret == nil && c.DevMode():
		// Dev sign-in mode: a fresh secret per start, so nothing signed by
		// an earlier run (or anyone else's) is accepted.
		c.SessionSecret = make([]byte, MinSecretLen)
		rand.Read(c.SessionSecret)
	case c.SessionSecret == nil:
		return fmt.Errorf("HEADCOUNT_SESSION_SECRET: required (at least %d bytes) when GITHUB_KEY is set", MinSecretLen)
	case len(c.SessionSecret) < MinSecretLen:
		return fmt.Errorf("HEADCOUNT_SESSION_SECRET: %d bytes is too short; use at least %d (e.g. openssl rand -hex 32)", len(c.SessionSecret), MinSecretLen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		missing, given := "HEADCOUNT_TLS_KEY", "HEADCOUNT_TLS_CERT"
		if c.TLSCert == "" {
			missing, given = given, missing
		}
		return fmt.Errorf("%s: required when %s is set (HTTPS needs both the certificate and its key)", missing, given)
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
		return fmt.Errorf("HEADCOUNT_METRICS_ADDR: %q is HEADCOUNT_ADDR itself; leave it empty to serve /metrics there", c.MetricsAddr)
	}
	if c.DevMode() && !c.DevLogin && !isLoopback(c.Addr) {
		return fmt.Errorf("HEADCOUNT_DEV_LOGIN: dev sign-in (no GITHUB_KEY) lets anyone sign in as anyone; it refuses to listen on %q, a non-loopback address, unless HEADCOUNT_DEV_LOGIN=1", c.Addr)
	}
	// A loopback address behind a public reverse proxy is just as exposed.
	if c.DevMode() && !c.DevLogin && c.BaseURL != "" && !isLoopbackURL(c.BaseURL) {
		return fmt.Errorf("HEADCOUNT_DEV_LOGIN: dev sign-in (no GITHUB_KEY) lets anyone sign in as anyone; it refuses a public HEADCOUNT_BASE_URL (%s) unless HEADCOUNT_DEV_LOGIN=1", c.BaseURL)
	}
	return nil
}

// isLoopback reports whether addr listens only on a loopback interface. An
// empty host listens on every interface, so it is not loopback.
func isLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLoopbackURL reports whether u's host is a loopback name or address.
func isLoopbackURL(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	return isLoopback(net.JoinHostPort(parsed.Hostname(), "0"))
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func isHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func baseURL(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || !isHTTPURL(v) || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("HEADCOUNT_BASE_URL: %q is not an http(s) URL like https://headcount.example.com", v)
	}
	return strings.TrimRight(v, "/"), nil
}

// The shortest durations accepted: a faster heartbeat only spins, a
// shorter token expires before anyone can paste it.
const (
	minHeartbeat = 10 * time.Millisecond
	minTokenTTL  = time.Minute
)

func duration(name, v string, def, least time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration like 15s or 1h", name, v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s: %q must be positive", name, v)
	}
	if d < least {
		return 0, fmt.Errorf("%s: %q is shorter than the least allowed, %v", name, v, least)
	}
	return d, nil
}

func limit(name, v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a whole number ≥ 0 (0 means no limit)", name, v)
	}
	return n, nil
}

// Descriptors kept free of streams for everything else a process needs:
// pages, health checks, metrics, the count store, logs.
const (
	fdHeadroom    = 1024
	fallbackLimit = 10000
)

// StreamLimitFor is the default HEADCOUNT_MAX_STREAMS for a process allowed
// nofile open files: enough below the limit that, when streams run out, the
// server still accepts health checks and pages and answers new streams 503
// instead of running out of descriptors. 0 (unknown) gives a fixed default.
func StreamLimitFor(nofile uint64) int {
	switch {
	case !knownLimit(nofile):
		return fallbackLimit
	case nofile > 2*fdHeadroom:
		return int(nofile - fdHeadroom)
	default:
		return max(int(nofile/2), 1)
	}
}

// knownLimit reports whether nofile is an open-file limit to size by: 0
// is unknown, and above 2^30 it is "unlimited" in all but name.
func knownLimit(nofile uint64) bool { return nofile != 0 && nofile <= 1<<30 }

// CheckMaxStreams refuses a HEADCOUNT_MAX_STREAMS the open-file limit
// cannot hold: every stream holds a descriptor, and a server that runs out
// of them wedges (it can no longer accept even a health check) instead of
// answering new streams 503. The error names the most it can be. 0 (no
// limit, asked for) and an unknown limit (nofile 0) pass.
func CheckMaxStreams(maxStreams int, nofile uint64) error {
	if maxStreams <= 0 || !knownLimit(nofile) {
		return nil
	}
	if most := StreamLimitFor(nofile); maxStreams > most {
		return fmt.Errorf("HEADCOUNT_MAX_STREAMS: %d is more than the open-file limit (%d) allows; at most %d, which keeps descriptors for pages, health checks and Redis (or raise the limit: ulimit -n)", maxStreams, nofile, most)
	}
	return nil
}

// minOtherConns is the fewest non-stream connections ever allowed.
const minOtherConns = 16

// OtherConnLimitFor is how many connections that hold no stream (pages,
// health checks, sign-ins, and connections still sending their request
// headers) the server keeps open at once, for a process allowed nofile
// open files of which maxStreams go to streams: half the descriptors left,
// so a slowloris flood of half-sent requests can never take the rest, which
// the count store, logs and the kernel's own needs keep. 0 means no cap
// (an unknown limit, or streams without a limit).
func OtherConnLimitFor(nofile uint64, maxStreams int) int {
	if !knownLimit(nofile) || maxStreams <= 0 {
		return 0
	}
	left := int64(nofile) - int64(maxStreams)
	return int(max(left/2, minOtherConns))
}
