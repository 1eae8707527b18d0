// Package config reads and checks headcount's settings from the environment,
// in one place, before anything starts.
package config

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/headcount/headcount/internal/fdlimit"
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
	// DeadPeerGrace is how long, after a heartbeat, a connection's sent
	// data may go unacknowledged before the kernel drops it
	// (TCP_USER_TIMEOUT = Heartbeat + DeadPeerGrace): a client whose
	// network vanishes is counted out within a heartbeat plus this.
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
	// connection: Heartbeat + DeadPeerGrace.
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
	// DevLogin allows dev sign-in mode on a non-loopback address
	// (HEADCOUNT_DEV_LOGIN=1).
	DevLogin bool
}

// DevMode reports whether sign-in goes through the built-in development
// identity provider instead of GitHub.
func (c Config) DevMode() bool { return c.GitHubKey == "" }

// PublicURL is BaseURL, or, when it is not set, http://localhost with the
// port of addr, the address the program listens on.
func (c Config) PublicURL(addr net.Addr) string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	port := 0
	if a, ok := addr.(*net.TCPAddr); ok {
		port = a.Port
	}
	return fmt.Sprintf("http://localhost:%d", port)
}

// Secure reports whether the public URL is https, which makes every
// cookie Secure (and __Host- named).
func (c Config) Secure() bool { return strings.HasPrefix(c.BaseURL, "https://") }

// Load reads the environment through getenv and returns the checked
// configuration with every default resolved, so nothing downstream
// interprets a missing value. An error names the variable at fault in one
// line. The default stream limit follows the open-file limit in force, so
// a program that raises its limit (fdlimit.Raise) does so before Load.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		Addr:             or(getenv("HEADCOUNT_ADDR"), DefaultAddr),
		GitHubKey:        getenv("GITHUB_KEY"),
		GitHubSecret:     getenv("GITHUB_SECRET"),
		GitHubAuthURL:    or(getenv("GITHUB_AUTH_URL"), DefaultGitHubAuthURL),
		GitHubTokenURL:   or(getenv("GITHUB_TOKEN_URL"), DefaultGitHubTokenURL),
		GitHubProfileURL: or(getenv("GITHUB_PROFILE_URL"), DefaultGitHubProfileURL),
		GitHubEmailURL:   or(getenv("GITHUB_EMAIL_URL"), DefaultGitHubEmailURL),
		RedisURL:         getenv("HEADCOUNT_REDIS_URL"),
	}
	var err error
	if _, _, err = net.SplitHostPort(c.Addr); err != nil {
		return Config{}, fmt.Errorf("HEADCOUNT_ADDR: %q is not host:port", c.Addr)
	}
	if c.BaseURL, err = baseURL(getenv("HEADCOUNT_BASE_URL")); err != nil {
		return Config{}, err
	}
	for _, u := range []struct{ name, value string }{
		{"GITHUB_AUTH_URL", c.GitHubAuthURL},
		{"GITHUB_TOKEN_URL", c.GitHubTokenURL},
		{"GITHUB_PROFILE_URL", c.GitHubProfileURL},
		{"GITHUB_EMAIL_URL", c.GitHubEmailURL},
	} {
		if !isHTTPURL(u.value) {
			return Config{}, fmt.Errorf("%s: %q is not an http(s) URL", u.name, u.value)
		}
	}
	if c.GitHubKey != "" && c.GitHubSecret == "" {
		return Config{}, errors.New("GITHUB_SECRET: required when GITHUB_KEY is set")
	}
	if c.GitHubKey == "" && c.GitHubSecret != "" {
		return Config{}, errors.New("GITHUB_KEY: required when GITHUB_SECRET is set")
	}
	if c.SessionSecret, err = secret(getenv("HEADCOUNT_SESSION_SECRET"), c.DevMode()); err != nil {
		return Config{}, err
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return Config{}, errors.New("HEADCOUNT_REDIS_URL: want redis://host:port[/db] or rediss://…")
		}
	}
	if c.Heartbeat, err = duration(getenv, "HEADCOUNT_HEARTBEAT", DefaultHeartbeat, minHeartbeat); err != nil {
		return Config{}, err
	}
	c.DeadPeerTimeout = c.Heartbeat + DeadPeerGrace
	c.ShutdownTimeout = ShutdownTimeout
	if c.TokenTTL, err = duration(getenv, "HEADCOUNT_TOKEN_TTL", DefaultTokenTTL, minTokenTTL); err != nil {
		return Config{}, err
	}
	if c.MaxStreamsPerUser, err = limit(getenv, "HEADCOUNT_MAX_STREAMS_PER_USER", DefaultMaxStreamsPerUser); err != nil {
		return Config{}, err
	}
	// An unknown limit (0) gives StreamLimitFor's fixed default.
	c.OpenFileLimit, _ = fdlimit.Current()
	if c.MaxStreams, err = limit(getenv, "HEADCOUNT_MAX_STREAMS", StreamLimitFor(c.OpenFileLimit)); err != nil {
		return Config{}, err
	}
	switch v := getenv("HEADCOUNT_DEV_LOGIN"); v {
	case "", "0", "false":
	case "1", "true":
		c.DevLogin = true
	default:
		return Config{}, fmt.Errorf("HEADCOUNT_DEV_LOGIN: %q is not 1 or 0", v)
	}
	if c.DevMode() && !c.DevLogin && !isLoopback(c.Addr) {
		return Config{}, fmt.Errorf("HEADCOUNT_DEV_LOGIN: dev sign-in (no GITHUB_KEY) lets anyone sign in as anyone; it refuses to listen on %q, a non-loopback address, unless HEADCOUNT_DEV_LOGIN=1", c.Addr)
	}
	// A loopback address behind a public reverse proxy is just as exposed.
	if c.DevMode() && !c.DevLogin && c.BaseURL != "" && !isLoopbackURL(c.BaseURL) {
		return Config{}, fmt.Errorf("HEADCOUNT_DEV_LOGIN: dev sign-in (no GITHUB_KEY) lets anyone sign in as anyone; it refuses a public HEADCOUNT_BASE_URL (%s) unless HEADCOUNT_DEV_LOGIN=1", c.BaseURL)
	}
	return c, nil
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

func secret(v string, dev bool) ([]byte, error) {
	switch {
	case v == "" && dev:
		// Dev sign-in mode: a fresh secret per start, so nothing signed by
		// an earlier run (or anyone else's) is accepted.
		b := make([]byte, MinSecretLen)
		rand.Read(b)
		return b, nil
	case v == "":
		return nil, fmt.Errorf("HEADCOUNT_SESSION_SECRET: required (at least %d bytes) when GITHUB_KEY is set", MinSecretLen)
	case len(v) < MinSecretLen:
		return nil, fmt.Errorf("HEADCOUNT_SESSION_SECRET: %d bytes is too short; use at least %d (e.g. openssl rand -hex 32)", len(v), MinSecretLen)
	}
	return []byte(v), nil
}

// The shortest durations accepted: a faster heartbeat only spins, a
// shorter token expires before anyone can paste it.
const (
	minHeartbeat = 10 * time.Millisecond
	minTokenTTL  = time.Minute
)

func duration(getenv func(string) string, name string, def, least time.Duration) (time.Duration, error) {
	v := getenv(name)
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

func limit(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
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
	case nofile == 0 || nofile > 1<<30:
		return fallbackLimit
	case nofile > 2*fdHeadroom:
		return int(nofile - fdHeadroom)
	default:
		return max(int(nofile/2), 1)
	}
}
