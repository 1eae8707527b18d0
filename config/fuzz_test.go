package config

import (
	"strings"
	"testing"
)

// FuzzLoad configures headcount from arbitrary values of the variables an
// operator is most likely to get wrong. Load must never panic; a refusal
// names the variable at fault in one line; what it accepts keeps every
// promise the rest of the program relies on.
func FuzzLoad(f *testing.F) {
	f.Add("127.0.0.1:8080", "", "", "", "15s", "1h", "32", "")
	f.Add("[::1]:0", "https://headcount.example.com/", "client", strings.Repeat("s", 32), "10ms", "1m", "0", "0")
	f.Add(":8080", "http://user:pw@x/", "", "", "-1s", "1e9h", "-1", "99999999999999999999")
	f.Add("localhost:1", "javascript:alert(1)", "k", "short", "0", "", "1.5", "12")
	f.Add("127.0.0.1:8080", "http://localhost:8080", "", "", "1h", "8760h", "", "5")
	f.Fuzz(func(t *testing.T, addr, baseURL, key, secret, heartbeat, tokenTTL, perUser, maxStreams string) {
		vars := map[string]string{
			"HEADCOUNT_ADDR":                 addr,
			"HEADCOUNT_BASE_URL":             baseURL,
			"GITHUB_KEY":                     key,
			"GITHUB_SECRET":                  key,
			"HEADCOUNT_SESSION_SECRET":       secret,
			"HEADCOUNT_HEARTBEAT":            heartbeat,
			"HEADCOUNT_TOKEN_TTL":            tokenTTL,
			"HEADCOUNT_MAX_STREAMS_PER_USER": perUser,
			"HEADCOUNT_MAX_STREAMS":          maxStreams,
		}
		c, err := Load(func(k string) string { return vars[k] })
		if err != nil {
			msg := err.Error()
			name, _, ok := strings.Cut(msg, ":")
			if !ok || strings.Contains(msg, "\n") || (!strings.HasPrefix(name, "HEADCOUNT_") && !strings.HasPrefix(name, "GITHUB_")) {
				t.Fatalf("refusal %q does not name a variable in one line", msg)
			}
			return
		}
		switch {
		case c.Addr == "":
			t.Fatal("accepted with no address")
		case len(c.SessionSecret) < MinSecretLen:
			t.Fatalf("accepted a %d-byte secret", len(c.SessionSecret))
		case c.Heartbeat < minHeartbeat || c.TokenTTL < minTokenTTL:
			t.Fatalf("accepted heartbeat %v, token TTL %v", c.Heartbeat, c.TokenTTL)
		case c.MaxStreamsPerUser < 0 || c.MaxStreams < 0:
			t.Fatalf("accepted limits %d, %d", c.MaxStreamsPerUser, c.MaxStreams)
		case c.BaseURL != "" && !isHTTPURL(c.BaseURL):
			t.Fatalf("accepted base URL %q", c.BaseURL)
		case strings.HasSuffix(c.BaseURL, "/"):
			t.Fatalf("base URL %q keeps a trailing slash", c.BaseURL)
		case c.DevMode() && !c.DevLogin && (!isLoopback(c.Addr) || (c.BaseURL != "" && !isLoopbackURL(c.BaseURL))):
			t.Fatalf("dev sign-in accepted on %q / %q without HEADCOUNT_DEV_LOGIN", c.Addr, c.BaseURL)
		}
	})
}
