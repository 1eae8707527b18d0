package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Variable is one environment variable headcount reads: its name, the
// default and meaning `headcount --help` shows, and how Load parses it.
// The help text and the parsing come from this one table, so they cannot
// drift apart.
type Variable struct {
	// Name is the variable's name, e.g. HEADCOUNT_ADDR.
	Name string
	// Default says what an unset variable means.
	Default string
	// Meaning says what the variable is for.
	Meaning string
	// parse stores value (empty when unset) into c, or names the variable
	// in a one-line error.
	parse func(c *Config, value string) error
}

// Variables is every variable headcount reads, in the order the help shows
// them. Load reads exactly these.
func Variables() []Variable {
	return []Variable{
		{"HEADCOUNT_ADDR", DefaultAddr, "listen address, host:port",
			func(c *Config, v string) error {
				c.Addr = or(v, DefaultAddr)
				if _, _, err := net.SplitHostPort(c.Addr); err != nil {
					return fmt.Errorf("HEADCOUNT_ADDR: %q is not host:port", c.Addr)
				}
				return nil
			}},
		{"HEADCOUNT_BASE_URL", "http://localhost:<port of ADDR> (https:// with TLS)",
			"public URL; the OAuth callback is <BASE_URL>/auth/github/callback; https makes every cookie a Secure __Host- cookie and adds Strict-Transport-Security; sign-in reached through another host is redirected here first",
			func(c *Config, v string) (err error) {
				c.BaseURL, err = baseURL(v)
				return err
			}},
		{"HEADCOUNT_SESSION_SECRET", "random at each start in dev sign-in mode",
			fmt.Sprintf("keys the session cookie, the OAuth state cookie and bearer tokens; at least %d bytes; required with GITHUB_KEY or HEADCOUNT_REDIS_URL (every instance must share it)", MinSecretLen),
			func(c *Config, v string) error {
				if v != "" {
					c.SessionSecret = []byte(v)
				}
				return nil
			}},
		{"GITHUB_KEY", "empty: dev sign-in mode", "the GitHub OAuth app's client id",
			func(c *Config, v string) error { c.GitHubKey = v; return nil }},
		{"GITHUB_SECRET", "empty", "the GitHub OAuth app's client secret",
			func(c *Config, v string) error { c.GitHubSecret = v; return nil }},
		{"GITHUB_AUTH_URL", DefaultGitHubAuthURL, "GitHub's authorize endpoint (GitHub Enterprise, or a test server)",
			githubURL("GITHUB_AUTH_URL", DefaultGitHubAuthURL, func(c *Config) *string { return &c.GitHubAuthURL })},
		{"GITHUB_TOKEN_URL", DefaultGitHubTokenURL, "GitHub's token endpoint",
			githubURL("GITHUB_TOKEN_URL", DefaultGitHubTokenURL, func(c *Config) *string { return &c.GitHubTokenURL })},
		{"GITHUB_PROFILE_URL", DefaultGitHubProfileURL, "GitHub's user profile endpoint",
			githubURL("GITHUB_PROFILE_URL", DefaultGitHubProfileURL, func(c *Config) *string { return &c.GitHubProfileURL })},
		{"GITHUB_EMAIL_URL", DefaultGitHubEmailURL, "GitHub's user e-mails endpoint",
			githubURL("GITHUB_EMAIL_URL", DefaultGitHubEmailURL, func(c *Config) *string { return &c.GitHubEmailURL })},
		{"HEADCOUNT_REDIS_URL", "empty: one instance, count in memory",
			"redis://[:password@]host:port[/db] or rediss://... (one Redis), unix:///path/to/socket, " +
				"redis+sentinel://host:port[,host:port...]?master=NAME (a Sentinel-managed master), " +
				"redis+cluster://host:port[,host:port...] (a Redis Cluster); every instance on it shares one count",
			func(c *Config, v string) error {
				c.RedisURL = v
				if v == "" {
					return nil
				}
				if err := checkRedisURL(v); err != nil {
					return fmt.Errorf("HEADCOUNT_REDIS_URL: %v", err)
				}
				return nil
			}},
		{"HEADCOUNT_HEARTBEAT", DefaultHeartbeat.String() + " (at least " + minHeartbeat.String() + ")",
			"interval of SSE comment keep-alives; a client whose network vanishes is counted out within a heartbeat + 10s",
			func(c *Config, v string) (err error) {
				c.Heartbeat, err = duration("HEADCOUNT_HEARTBEAT", v, DefaultHeartbeat, minHeartbeat)
				return err
			}},
		{"HEADCOUNT_TOKEN_TTL", "1h (at least " + minTokenTTL.String() + ")", "lifetime of bearer tokens",
			func(c *Config, v string) (err error) {
				c.TokenTTL, err = duration("HEADCOUNT_TOKEN_TTL", v, DefaultTokenTTL, minTokenTTL)
				return err
			}},
		{"HEADCOUNT_MAX_STREAMS_PER_USER", fmt.Sprint(DefaultMaxStreamsPerUser), "streams one user may hold at once (more: 429); 0 = no limit",
			func(c *Config, v string) (err error) {
				c.MaxStreamsPerUser, err = limit("HEADCOUNT_MAX_STREAMS_PER_USER", v, DefaultMaxStreamsPerUser)
				return err
			}},
		{"HEADCOUNT_MAX_STREAMS", fmt.Sprintf("the open-file limit minus %d", fdHeadroom), "streams this instance accepts (more: 503 with Retry-After); 0 = no limit",
			func(c *Config, v string) (err error) {
				// An unknown limit (0) gives StreamLimitFor's fixed default.
				c.MaxStreams, err = limit("HEADCOUNT_MAX_STREAMS", v, StreamLimitFor(c.OpenFileLimit))
				return err
			}},
		{"HEADCOUNT_TLS_CERT", "empty: plain HTTP", "PEM certificate chain; with HEADCOUNT_TLS_KEY, headcount serves HTTPS with HTTP/2 and reloads both files on SIGHUP or when they change",
			func(c *Config, v string) error { c.TLSCert = v; return nil }},
		{"HEADCOUNT_TLS_KEY", "empty: plain HTTP", "PEM private key of HEADCOUNT_TLS_CERT",
			func(c *Config, v string) error { c.TLSKey = v; return nil }},
		{"HEADCOUNT_METRICS_ADDR", "empty: /metrics on HEADCOUNT_ADDR", "host:port that alone serves /metrics (the main address then answers 404 for it)",
			func(c *Config, v string) error {
				c.MetricsAddr = v
				if v == "" {
					return nil
				}
				if _, _, err := net.SplitHostPort(v); err != nil {
					return fmt.Errorf("HEADCOUNT_METRICS_ADDR: %q is not host:port", v)
				}
				return nil
			}},
		{"HEADCOUNT_TRUSTED_PROXIES", "empty: trust no proxy", "comma-separated addresses or CIDR ranges of reverse proxies whose X-Forwarded-For gives the client address in request logs",
			func(c *Config, v string) (err error) {
				c.TrustedProxies, err = prefixes("HEADCOUNT_TRUSTED_PROXIES", v)
				return err
			}},
		{"HEADCOUNT_LOG_FORMAT", "text", "text or json",
			func(c *Config, v string) error {
				switch v {
				case "", "text", "json":
					c.LogFormat = or(v, "text")
					return nil
				}
				return fmt.Errorf("HEADCOUNT_LOG_FORMAT: %q is not text or json", v)
			}},
		{"HEADCOUNT_LOG_LEVEL", "info", "debug, info, warn or error; health, readiness and metrics requests log at debug",
			func(c *Config, v string) error {
				if v == "" {
					c.LogLevel = slog.LevelInfo
					return nil
				}
				if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(v)) || c.LogLevel.UnmarshalText([]byte(v)) != nil {
					return fmt.Errorf("HEADCOUNT_LOG_LEVEL: %q is not debug, info, warn or error", v)
				}
				return nil
			}},
		{"HEADCOUNT_PRESENCE", "names", "names: who is online is shown to signed-in users; count: only numbers ever leave the server (no user events, an empty people list)",
			func(c *Config, v string) error {
				switch v {
				case "", "names":
				case "count":
					c.PresenceCountOnly = true
				default:
					return fmt.Errorf("HEADCOUNT_PRESENCE: %q is neither names (who is online is shown to signed-in users) nor count (only numbers)", v)
				}
				return nil
			}},
		{"HEADCOUNT_DEV_LOGIN", "unset", "1 (or true) allows dev sign-in mode (no GITHUB_KEY) on a non-loopback address, under a public base URL and through a proxy; 0, false or unset refuse them",
			func(c *Config, v string) error {
				switch v {
				case "", "0", "false":
				case "1", "true":
					c.DevLogin = true
				default:
					return fmt.Errorf("HEADCOUNT_DEV_LOGIN: %q is not 1, true, 0 or false", v)
				}
				return nil
			}},
	}
}

// Unknown returns, sorted, the names of the HEADCOUNT_* variables in
// environ ("NAME=value" entries, as os.Environ gives them) that headcount
// does not read: a misspelt variable must not pass silently.
func Unknown(environ []string) []string {
	known := map[string]bool{}
	for _, v := range Variables() {
		known[v.Name] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "HEADCOUNT_") && !known[name] && !slices.Contains(unknown, name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

func githubURL(name, def string, field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		v = or(v, def)
		if !isHTTPURL(v) {
			return fmt.Errorf("%s: %q is not an http(s) URL", name, v)
		}
		*field(c) = v
		return nil
	}
}

// prefixes parses a comma-separated list of addresses and CIDR ranges; an
// address is a range of one.
func prefixes(name, v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an IP address or CIDR range like 10.0.0.0/8", name, f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// checkRedisURL refuses a HEADCOUNT_REDIS_URL of none of its forms, so a
// typo stops the start before anything listens. The grammar of each form
// (hosts, credentials, database, options) is stream/redis's alone: it
// reads the URL when it connects, and its errors stop the start too.
// Nothing of the URL is repeated here: it may hold a password.
func checkRedisURL(v string) error {
	scheme, rest, ok := strings.Cut(v, "://")
	switch {
	case !ok:
		return errors.New("no scheme; " + redisURLForms)
	case rest == "" || rest == "/":
		return errors.New("no host; " + redisURLForms)
	}
	switch scheme {
	case "redis", "rediss", "unix", "redis+sentinel", "redis+cluster":
		return nil
	}
	return errors.New("unknown scheme; " + redisURLForms)
}

// redisURLForms is what an error about HEADCOUNT_REDIS_URL asks for.
const redisURLForms = "want redis://host:port[/db], rediss://..., unix:///path, " +
	"redis+sentinel://host:port[,host:port...]?master=NAME or redis+cluster://host:port[,host:port...]"
