package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/fdlimit"
)

// env is a getenv backed by a map, so no test reads the machine's
// environment.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// goodSecret is exactly the shortest secret accepted.
var goodSecret = strings.Repeat("s", MinSecretLen)

// github is the smallest environment that configures real GitHub sign-in,
// with extra added on top.
func github(extra map[string]string) map[string]string {
	vars := map[string]string{
		"GITHUB_KEY":               "client-id",
		"GITHUB_SECRET":            "client-secret",
		"HEADCOUNT_SESSION_SECRET": goodSecret,
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

// TestLoadDefaults checks every default of SPEC.md's configuration table
// against the literal values the SPEC and README promise.
func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load(empty environment): %v", err)
	}
	nofile, err := fdlimit.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"Addr", c.Addr, "127.0.0.1:8080"},
		{"BaseURL (filled in from the listener)", c.BaseURL, ""},
		{"GitHubKey", c.GitHubKey, ""},
		{"GitHubSecret", c.GitHubSecret, ""},
		{"GitHubAuthURL", c.GitHubAuthURL, "https://github.com/login/oauth/authorize"},
		{"GitHubTokenURL", c.GitHubTokenURL, "https://github.com/login/oauth/access_token"},
		{"GitHubProfileURL", c.GitHubProfileURL, "https://api.github.com/user"},
		{"GitHubEmailURL", c.GitHubEmailURL, "https://api.github.com/user/emails"},
		{"RedisURL", c.RedisURL, ""},
		{"Heartbeat", c.Heartbeat, 15 * time.Second},
		{"DeadPeerTimeout (10 s: a vanished client goes within a heartbeat + 10 s)", c.DeadPeerTimeout, 10 * time.Second},
		{"ShutdownTimeout (within SPEC's 5 s)", c.ShutdownTimeout, 4 * time.Second},
		{"TokenTTL", c.TokenTTL, time.Hour},
		{"MaxStreamsPerUser", c.MaxStreamsPerUser, 32},
		{"OpenFileLimit", c.OpenFileLimit, nofile},
		{"MaxStreams (derived from the open-file limit)", c.MaxStreams, StreamLimitFor(nofile)},
		{"DevLogin", c.DevLogin, false},
		{"DevMode", c.DevMode(), true},
		{"len(SessionSecret)", len(c.SessionSecret), 32},
		{"TLS", c.TLS(), false},
		{"MetricsAddr", c.MetricsAddr, ""},
		{"len(TrustedProxies)", len(c.TrustedProxies), 0},
		{"LogFormat", c.LogFormat, "text"},
		{"LogLevel", c.LogLevel, slog.LevelInfo},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

// TestLoadValues checks that every variable, when set to a good value,
// reaches the Config.
func TestLoadValues(t *testing.T) {
	c, err := Load(env(github(map[string]string{
		"HEADCOUNT_ADDR":                 "0.0.0.0:9090",
		"HEADCOUNT_BASE_URL":             "https://headcount.example.com/",
		"GITHUB_AUTH_URL":                "https://ghe.example.com/login/oauth/authorize",
		"GITHUB_TOKEN_URL":               "https://ghe.example.com/login/oauth/access_token",
		"GITHUB_PROFILE_URL":             "https://ghe.example.com/api/v3/user",
		"GITHUB_EMAIL_URL":               "http://127.0.0.1:1/user/emails",
		"HEADCOUNT_REDIS_URL":            "redis://127.0.0.1:6379/2",
		"HEADCOUNT_HEARTBEAT":            "250ms",
		"HEADCOUNT_TOKEN_TTL":            "90m",
		"HEADCOUNT_MAX_STREAMS_PER_USER": "7",
		"HEADCOUNT_MAX_STREAMS":          "12345",
		"HEADCOUNT_DEV_LOGIN":            "1",
		"HEADCOUNT_TLS_CERT":             "/etc/headcount/cert.pem",
		"HEADCOUNT_TLS_KEY":              "/etc/headcount/key.pem",
		"HEADCOUNT_METRICS_ADDR":         "127.0.0.1:9090",
		"HEADCOUNT_TRUSTED_PROXIES":      "127.0.0.1, 10.0.0.0/8,::1",
		"HEADCOUNT_LOG_FORMAT":           "json",
		"HEADCOUNT_LOG_LEVEL":            "debug",
		"HEADCOUNT_PRESENCE":             "count",
	})))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"Addr", c.Addr, "0.0.0.0:9090"},
		{"BaseURL (trailing slash trimmed)", c.BaseURL, "https://headcount.example.com"},
		{"GitHubKey", c.GitHubKey, "client-id"},
		{"GitHubSecret", c.GitHubSecret, "client-secret"},
		{"GitHubAuthURL", c.GitHubAuthURL, "https://ghe.example.com/login/oauth/authorize"},
		{"GitHubTokenURL", c.GitHubTokenURL, "https://ghe.example.com/login/oauth/access_token"},
		{"GitHubProfileURL", c.GitHubProfileURL, "https://ghe.example.com/api/v3/user"},
		{"GitHubEmailURL", c.GitHubEmailURL, "http://127.0.0.1:1/user/emails"},
		{"RedisURL", c.RedisURL, "redis://127.0.0.1:6379/2"},
		{"Heartbeat", c.Heartbeat, 250 * time.Millisecond},
		{"TokenTTL", c.TokenTTL, 90 * time.Minute},
		{"MaxStreamsPerUser", c.MaxStreamsPerUser, 7},
		{"MaxStreams", c.MaxStreams, 12345},
		{"DevLogin", c.DevLogin, true},
		{"PresenceCountOnly", c.PresenceCountOnly, true},
		{"DevMode", c.DevMode(), false},
		{"SessionSecret", string(c.SessionSecret), goodSecret},
		{"TLSCert", c.TLSCert, "/etc/headcount/cert.pem"},
		{"TLSKey", c.TLSKey, "/etc/headcount/key.pem"},
		{"TLS", c.TLS(), true},
		{"MetricsAddr", c.MetricsAddr, "127.0.0.1:9090"},
		{"TrustedProxies", fmt.Sprint(c.TrustedProxies), "[127.0.0.1/32 10.0.0.0/8 ::1/128]"},
		{"LogFormat", c.LogFormat, "json"},
		{"LogLevel", c.LogLevel, slog.LevelDebug},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

// TestLoadRefuses checks that each bad value stops the load with one line
// that starts with the variable at fault.
func TestLoadRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		varName string // the variable the error must name
	}{
		{"unparsable heartbeat", map[string]string{"HEADCOUNT_HEARTBEAT": "abc"}, "HEADCOUNT_HEARTBEAT"},
		{"unknown presence", map[string]string{"HEADCOUNT_PRESENCE": "everyone"}, "HEADCOUNT_PRESENCE"},
		{"heartbeat without unit", map[string]string{"HEADCOUNT_HEARTBEAT": "15"}, "HEADCOUNT_HEARTBEAT"},
		{"zero heartbeat", map[string]string{"HEADCOUNT_HEARTBEAT": "0s"}, "HEADCOUNT_HEARTBEAT"},
		{"negative heartbeat", map[string]string{"HEADCOUNT_HEARTBEAT": "-5s"}, "HEADCOUNT_HEARTBEAT"},
		{"negative token TTL", map[string]string{"HEADCOUNT_TOKEN_TTL": "-1h"}, "HEADCOUNT_TOKEN_TTL"},
		{"zero token TTL", map[string]string{"HEADCOUNT_TOKEN_TTL": "0"}, "HEADCOUNT_TOKEN_TTL"},
		{"unparsable token TTL", map[string]string{"HEADCOUNT_TOKEN_TTL": "1 hour"}, "HEADCOUNT_TOKEN_TTL"},

		{"short secret with GitHub", github(map[string]string{"HEADCOUNT_SESSION_SECRET": "short"}), "HEADCOUNT_SESSION_SECRET"},
		{"31-byte secret with GitHub", github(map[string]string{"HEADCOUNT_SESSION_SECRET": goodSecret[1:]}), "HEADCOUNT_SESSION_SECRET"},
		{"no secret with GitHub", github(map[string]string{"HEADCOUNT_SESSION_SECRET": ""}), "HEADCOUNT_SESSION_SECRET"},
		{"short secret in dev mode", map[string]string{"HEADCOUNT_SESSION_SECRET": "short"}, "HEADCOUNT_SESSION_SECRET"},
		{"GITHUB_KEY without GITHUB_SECRET", github(map[string]string{"GITHUB_SECRET": ""}), "GITHUB_SECRET"},
		{"GITHUB_SECRET without GITHUB_KEY", map[string]string{"GITHUB_SECRET": "client-secret", "HEADCOUNT_SESSION_SECRET": goodSecret}, "GITHUB_KEY"},

		{"ftp base URL", map[string]string{"HEADCOUNT_BASE_URL": "ftp://x"}, "HEADCOUNT_BASE_URL"},
		{"base URL without scheme", map[string]string{"HEADCOUNT_BASE_URL": "localhost:8080"}, "HEADCOUNT_BASE_URL"},
		{"base URL with query", map[string]string{"HEADCOUNT_BASE_URL": "http://localhost:8080/?next=/"}, "HEADCOUNT_BASE_URL"},
		{"base URL with fragment", map[string]string{"HEADCOUNT_BASE_URL": "http://localhost:8080/#top"}, "HEADCOUNT_BASE_URL"},
		{"base URL with user", map[string]string{"HEADCOUNT_BASE_URL": "https://me:pw@headcount.example.com"}, "HEADCOUNT_BASE_URL"},
		{"base URL without host", map[string]string{"HEADCOUNT_BASE_URL": "https://"}, "HEADCOUNT_BASE_URL"},
		{"unparsable base URL", map[string]string{"HEADCOUNT_BASE_URL": "http://[::1"}, "HEADCOUNT_BASE_URL"},

		{"auth URL not a URL", map[string]string{"GITHUB_AUTH_URL": "not a url"}, "GITHUB_AUTH_URL"},
		{"token URL ftp", map[string]string{"GITHUB_TOKEN_URL": "ftp://ghe.example.com/token"}, "GITHUB_TOKEN_URL"},
		{"profile URL relative", map[string]string{"GITHUB_PROFILE_URL": "/user"}, "GITHUB_PROFILE_URL"},
		{"email URL without host", map[string]string{"GITHUB_EMAIL_URL": "https://"}, "GITHUB_EMAIL_URL"},

		{"http Redis URL", map[string]string{"HEADCOUNT_REDIS_URL": "http://127.0.0.1:6379"}, "HEADCOUNT_REDIS_URL"},
		{"Redis URL without scheme", map[string]string{"HEADCOUNT_REDIS_URL": "127.0.0.1:6379"}, "HEADCOUNT_REDIS_URL"},
		{"Redis URL without host", map[string]string{"HEADCOUNT_REDIS_URL": "redis://"}, "HEADCOUNT_REDIS_URL"},
		{"Sentinel URL without host", map[string]string{"HEADCOUNT_REDIS_URL": "redis+sentinel://"}, "HEADCOUNT_REDIS_URL"},
		{"misspelt Cluster scheme", map[string]string{"HEADCOUNT_REDIS_URL": "redis-cluster://127.0.0.1:7000"}, "HEADCOUNT_REDIS_URL"},

		{"non-numeric per-user limit", map[string]string{"HEADCOUNT_MAX_STREAMS_PER_USER": "many"}, "HEADCOUNT_MAX_STREAMS_PER_USER"},
		{"negative per-user limit", map[string]string{"HEADCOUNT_MAX_STREAMS_PER_USER": "-1"}, "HEADCOUNT_MAX_STREAMS_PER_USER"},
		{"fractional per-user limit", map[string]string{"HEADCOUNT_MAX_STREAMS_PER_USER": "1.5"}, "HEADCOUNT_MAX_STREAMS_PER_USER"},
		{"non-numeric instance limit", map[string]string{"HEADCOUNT_MAX_STREAMS": "ten"}, "HEADCOUNT_MAX_STREAMS"},
		{"negative instance limit", map[string]string{"HEADCOUNT_MAX_STREAMS": "-3"}, "HEADCOUNT_MAX_STREAMS"},

		{"address without port", map[string]string{"HEADCOUNT_ADDR": "127.0.0.1"}, "HEADCOUNT_ADDR"},
		{"address that is a port", map[string]string{"HEADCOUNT_ADDR": "8080"}, "HEADCOUNT_ADDR"},
		{"address with too many colons", map[string]string{"HEADCOUNT_ADDR": "127.0.0.1:80:80"}, "HEADCOUNT_ADDR"},

		{"dev mode on every IPv4 interface", map[string]string{"HEADCOUNT_ADDR": "0.0.0.0:8080"}, "HEADCOUNT_DEV_LOGIN"},
		{"dev mode on every interface", map[string]string{"HEADCOUNT_ADDR": ":8080"}, "HEADCOUNT_DEV_LOGIN"},
		{"dev mode on every IPv6 interface", map[string]string{"HEADCOUNT_ADDR": "[::]:8080"}, "HEADCOUNT_DEV_LOGIN"},
		{"dev mode on a public name", map[string]string{"HEADCOUNT_ADDR": "headcount.example.com:8080"}, "HEADCOUNT_DEV_LOGIN"},
		{"dev mode with HEADCOUNT_DEV_LOGIN=0", map[string]string{"HEADCOUNT_ADDR": "0.0.0.0:8080", "HEADCOUNT_DEV_LOGIN": "0"}, "HEADCOUNT_DEV_LOGIN"},
		{"unknown HEADCOUNT_DEV_LOGIN", map[string]string{"HEADCOUNT_DEV_LOGIN": "yes"}, "HEADCOUNT_DEV_LOGIN"},
		{"dev mode behind a public base URL", map[string]string{"HEADCOUNT_BASE_URL": "https://headcount.example.com"}, "HEADCOUNT_DEV_LOGIN"},
		{"zero heartbeat", map[string]string{"HEADCOUNT_HEARTBEAT": "0s"}, "HEADCOUNT_HEARTBEAT"},
		{"a heartbeat that would spin", map[string]string{"HEADCOUNT_HEARTBEAT": "1ns"}, "HEADCOUNT_HEARTBEAT"},
		{"tokens dead on arrival", map[string]string{"HEADCOUNT_TOKEN_TTL": "1ms"}, "HEADCOUNT_TOKEN_TTL"},

		{"Redis without a session secret", map[string]string{"HEADCOUNT_REDIS_URL": "redis://127.0.0.1:6379/0"}, "HEADCOUNT_SESSION_SECRET"},
		{"Redis and GitHub without a session secret", github(map[string]string{"HEADCOUNT_REDIS_URL": "redis://127.0.0.1:6379/0", "HEADCOUNT_SESSION_SECRET": ""}), "HEADCOUNT_SESSION_SECRET"},
		{"TLS certificate without key", map[string]string{"HEADCOUNT_TLS_CERT": "cert.pem"}, "HEADCOUNT_TLS_KEY"},
		{"TLS key without certificate", map[string]string{"HEADCOUNT_TLS_KEY": "key.pem"}, "HEADCOUNT_TLS_CERT"},
		{"metrics address without port", map[string]string{"HEADCOUNT_METRICS_ADDR": "127.0.0.1"}, "HEADCOUNT_METRICS_ADDR"},
		{"metrics address is the main address", map[string]string{"HEADCOUNT_METRICS_ADDR": "127.0.0.1:8080"}, "HEADCOUNT_METRICS_ADDR"},
		{"trusted proxy not an address", map[string]string{"HEADCOUNT_TRUSTED_PROXIES": "10.0.0.1,proxy.example.com"}, "HEADCOUNT_TRUSTED_PROXIES"},
		{"trusted proxy bad range", map[string]string{"HEADCOUNT_TRUSTED_PROXIES": "10.0.0.0/33"}, "HEADCOUNT_TRUSTED_PROXIES"},
		{"log format xml", map[string]string{"HEADCOUNT_LOG_FORMAT": "xml"}, "HEADCOUNT_LOG_FORMAT"},
		{"log level verbose", map[string]string{"HEADCOUNT_LOG_LEVEL": "verbose"}, "HEADCOUNT_LOG_LEVEL"},
		{"log level with offset", map[string]string{"HEADCOUNT_LOG_LEVEL": "info+2"}, "HEADCOUNT_LOG_LEVEL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.vars))
			if err == nil {
				t.Fatalf("Load(%v) = %+v, nil; want an error naming %s", tc.vars, c, tc.varName)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.varName+": ") {
				t.Errorf("error %q does not start with %q", msg, tc.varName+": ")
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error %q is more than one line", msg)
			}
		})
	}
}

// TestLoadAccepts checks the edges that must not be refused: listen
// addresses in dev mode, zero limits, Redis schemes, the shortest secret.
func TestLoadAccepts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		vars  map[string]string
		check func(t *testing.T, c Config)
	}{
		{"dev mode on 127.0.0.1", map[string]string{"HEADCOUNT_ADDR": "127.0.0.1:8080"}, nil},
		{"dev mode on another 127/8 address", map[string]string{"HEADCOUNT_ADDR": "127.0.0.2:8080"}, nil},
		{"dev mode on [::1]", map[string]string{"HEADCOUNT_ADDR": "[::1]:8080"}, nil},
		{"dev mode on localhost", map[string]string{"HEADCOUNT_ADDR": "localhost:0"}, nil},
		{"dev mode with a loopback base URL", map[string]string{"HEADCOUNT_BASE_URL": "http://127.0.0.1:8080"}, nil},
		{"dev mode behind a public base URL with HEADCOUNT_DEV_LOGIN=1", map[string]string{"HEADCOUNT_BASE_URL": "https://headcount.example.com", "HEADCOUNT_DEV_LOGIN": "1"}, nil},
		{"dev mode on 0.0.0.0 with HEADCOUNT_DEV_LOGIN=1", map[string]string{"HEADCOUNT_ADDR": "0.0.0.0:8080", "HEADCOUNT_DEV_LOGIN": "1"}, func(t *testing.T, c Config) {
			if !c.DevLogin || !c.DevMode() {
				t.Errorf("DevLogin, DevMode() = %v, %v; want true, true", c.DevLogin, c.DevMode())
			}
		}},
		{"dev mode on :8080 with HEADCOUNT_DEV_LOGIN=true", map[string]string{"HEADCOUNT_ADDR": ":8080", "HEADCOUNT_DEV_LOGIN": "true"}, nil},
		{"GitHub on every interface needs no HEADCOUNT_DEV_LOGIN", github(map[string]string{"HEADCOUNT_ADDR": ":8080"}), func(t *testing.T, c Config) {
			if c.DevMode() {
				t.Error("DevMode() = true with GITHUB_KEY set")
			}
		}},
		{"zero limits mean no limit", map[string]string{"HEADCOUNT_MAX_STREAMS_PER_USER": "0", "HEADCOUNT_MAX_STREAMS": "0"}, func(t *testing.T, c Config) {
			if c.MaxStreamsPerUser != 0 || c.MaxStreams != 0 {
				t.Errorf("MaxStreamsPerUser, MaxStreams = %d, %d; want 0, 0 (no limit)", c.MaxStreamsPerUser, c.MaxStreams)
			}
		}},
		{"rediss URL", map[string]string{"HEADCOUNT_REDIS_URL": "rediss://user:pw@127.0.0.1:6380/0", "HEADCOUNT_SESSION_SECRET": goodSecret}, nil},
		{"unix socket Redis URL", map[string]string{"HEADCOUNT_REDIS_URL": "unix:///run/redis/redis.sock", "HEADCOUNT_SESSION_SECRET": goodSecret}, nil},
		{"Sentinel Redis URL", map[string]string{"HEADCOUNT_REDIS_URL": "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379,[::1]:26379/2?master=mymaster", "HEADCOUNT_SESSION_SECRET": goodSecret}, nil},
		{"Cluster Redis URL", map[string]string{"HEADCOUNT_REDIS_URL": "redis+cluster://10.0.0.1:7000,10.0.0.2:7000,[::1]:7000", "HEADCOUNT_SESSION_SECRET": goodSecret}, nil},
		{"http base URL with a path", map[string]string{"HEADCOUNT_BASE_URL": "http://127.0.0.1:8080/headcount/"}, func(t *testing.T, c Config) {
			if c.BaseURL != "http://127.0.0.1:8080/headcount" {
				t.Errorf("BaseURL = %q, want the trailing slash trimmed", c.BaseURL)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.vars))
			if err != nil {
				t.Fatalf("Load(%v): %v", tc.vars, err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// TestSessionSecret checks that dev mode makes a fresh random secret at
// each load while a given secret is kept as it is, in either mode.
func TestSessionSecret(t *testing.T) {
	t.Run("dev mode: random per load", func(t *testing.T) {
		a, err := Load(env(nil))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Load(env(nil))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range [][]byte{a.SessionSecret, b.SessionSecret} {
			if len(s) != MinSecretLen {
				t.Fatalf("dev secret is %d bytes, want %d", len(s), MinSecretLen)
			}
			if bytes.Equal(s, make([]byte, MinSecretLen)) {
				t.Fatal("dev secret is all zero bytes")
			}
		}
		if bytes.Equal(a.SessionSecret, b.SessionSecret) {
			t.Errorf("two loads made the same dev secret %x", a.SessionSecret)
		}
	})
	given := goodSecret + "-and-some-more"
	for _, tc := range []struct {
		name string
		vars map[string]string
	}{
		{"dev mode", map[string]string{"HEADCOUNT_SESSION_SECRET": given}},
		{"GitHub", github(map[string]string{"HEADCOUNT_SESSION_SECRET": given})},
	} {
		t.Run(tc.name+": given secret kept", func(t *testing.T) {
			c, err := Load(env(tc.vars))
			if err != nil {
				t.Fatal(err)
			}
			if string(c.SessionSecret) != given {
				t.Errorf("SessionSecret = %q, want %q", c.SessionSecret, given)
			}
		})
	}
}

func TestStreamLimitFor(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{20000, 18976},
		{1048576, 1048576 - 1024},
		{2049, 1025},
		{2048, 1024},
		{1024, 512},
		{256, 128},
		{2, 1},
		{1, 1},
		{0, fallbackLimit},              // unknown
		{math.MaxUint64, fallbackLimit}, // RLIM_INFINITY
		{1<<30 + 1, fallbackLimit},      // beyond any real limit
		{1 << 30, 1<<30 - 1024},         // the largest taken as real
		{uint64(fallbackLimit) * 4, 40000 - 1024}, // not capped by the fallback
	} {
		if got := StreamLimitFor(tc.nofile); got != tc.want {
			t.Errorf("StreamLimitFor(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
	if fallbackLimit <= 0 {
		t.Errorf("fallbackLimit = %d, want > 0", fallbackLimit)
	}
}

// TestStreamLimitForBounds checks the promise behind the numbers: a stream
// limit is always positive and, when there is more than one descriptor,
// leaves at least one for everything else.
func TestStreamLimitForBounds(t *testing.T) {
	for n := uint64(0); n <= 70000; n++ {
		got := StreamLimitFor(n)
		if got <= 0 {
			t.Fatalf("StreamLimitFor(%d) = %d, want > 0", n, got)
		}
		if n > 1 && uint64(got) >= n {
			t.Fatalf("StreamLimitFor(%d) = %d, want below the open-file limit", n, got)
		}
	}
}

// TestMaxStreamsAboveTheOpenFileLimitIsRefused: a limit the descriptors
// cannot hold is refused at start, naming the most it can be.
func TestMaxStreamsAboveTheOpenFileLimitIsRefused(t *testing.T) {
	err := CheckMaxStreams(50000, 20000)
	if err == nil {
		t.Fatal("50000 streams under a 20000 open-file limit were accepted")
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "HEADCOUNT_MAX_STREAMS: ") || !strings.Contains(msg, "at most 18976") {
		t.Fatalf("error %q does not name the variable and the most it can be", msg)
	}
	for _, tc := range []struct {
		max    int
		nofile uint64
	}{{18976, 20000}, {0, 20000}, {50000, 0}, {100, 1024}} {
		if err := CheckMaxStreams(tc.max, tc.nofile); err != nil {
			t.Errorf("CheckMaxStreams(%d, %d): %v", tc.max, tc.nofile, err)
		}
	}
	if err := CheckMaxStreams(600, 1024); err == nil {
		t.Error("600 streams under 1024 descriptors (at most 512) were accepted")
	}
}

func TestOtherConnLimitFor(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		max    int
		want   int
	}{
		{20000, StreamLimitFor(20000), 512},
		{20000, 10000, 5000},
		{1024, 512, 256},
		{100, 99, minOtherConns},
		{0, 100, 0},
		{20000, 0, 0},
	} {
		if got := OtherConnLimitFor(tc.nofile, tc.max); got != tc.want {
			t.Errorf("OtherConnLimitFor(%d, %d) = %d, want %d", tc.nofile, tc.max, got, tc.want)
		}
		if tc.nofile > 0 && tc.max > 0 && tc.max <= StreamLimitFor(tc.nofile) {
			if total := uint64(tc.max + OtherConnLimitFor(tc.nofile, tc.max)); total >= tc.nofile {
				t.Errorf("nofile %d: %d streams and %d other connections leave no descriptor spare", tc.nofile, tc.max, total-uint64(tc.max))
			}
		}
	}
}
