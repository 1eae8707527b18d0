package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/headcount/headcount/config"

	"github.com/headcount/headcount/internal/poll"
	"github.com/headcount/headcount/internal/redistest"
)

// records returns every record logged with message msg.
func (l *logBuffer) all(msg string) []map[string]string {
	var out []map[string]string
	for _, r := range l.records() {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// TestStartupLineNamesSettings checks that the start-up line tells an
// operator every setting that matters, and never the Redis password.
func TestStartupLineNamesSettings(t *testing.T) {
	rdb := redistest.Start(t)
	in := start(t, map[string]string{
		"HEADCOUNT_REDIS_URL":            rdb.URL() + "/0",
		"HEADCOUNT_SESSION_SECRET":       strings.Repeat("k", 32),
		"HEADCOUNT_METRICS_ADDR":         "127.0.0.1:0",
		"HEADCOUNT_MAX_STREAMS":          "500",
		"HEADCOUNT_MAX_STREAMS_PER_USER": "7",
		"HEADCOUNT_HEARTBEAT":            "20s",
	})
	rec, _ := in.log.find("headcount listening")
	for key, want := range map[string]string{
		"tls":                  "false",
		"dev_sign_in":          "true",
		"redis":                rdb.URL(),
		"max_streams":          "500",
		"max_streams_per_user": "7",
		"heartbeat":            "20s",
	} {
		if rec[key] != want {
			t.Errorf("listening line: %s=%q, want %q (%v)", key, rec[key], want, rec)
		}
	}
	if !strings.HasPrefix(rec["addr"], "127.0.0.1:") || !strings.HasPrefix(rec["url"], "http://localhost:") || !strings.HasPrefix(rec["metrics"], "127.0.0.1:") {
		t.Errorf("listening line lacks the address, URL or metrics address: %v", rec)
	}
}

// TestStartupLineHidesRedisPassword checks that the Redis URL's password
// never reaches the start-up line, whatever form the URL takes.
func TestStartupLineHidesRedisPassword(t *testing.T) {
	for _, u := range []string{
		"redis://:sekrit-pass@redis.internal:6379/0",
		"rediss://user:sekrit-pass@redis.internal:6380",
		"redis://user:sekrit-pass@redis.internal",
	} {
		cfg, err := config.Load(lookup([]string{"HEADCOUNT_REDIS_URL=" + u, "HEADCOUNT_SESSION_SECRET=" + strings.Repeat("k", 32)}))
		if err != nil {
			t.Fatal(err)
		}
		attrs := fmt.Sprint(startupAttrs(cfg, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, nil, "http://localhost:8080"))
		if strings.Contains(attrs, "sekrit") || strings.Contains(attrs, "user:") || !strings.Contains(attrs, "redis.internal") {
			t.Errorf("start-up line for %s: %s; want the host and no credentials", u, attrs)
		}
	}
}

// TestUnknownVariablesWarned checks that a misspelt HEADCOUNT_* variable
// is named in one warning, and that none is given when all are known.
func TestUnknownVariablesWarned(t *testing.T) {
	in := start(t, map[string]string{"HEADCOUNT_HEARTBAET": "1s", "HEADCOUNT_METRIC_ADDR": "x", "HEADCOUNT_HEARTBEAT": "1s"})
	warnings := in.log.all("unknown HEADCOUNT_* variables are ignored (misspelt? headcount --help lists every variable)")
	if len(warnings) != 1 || warnings[0]["level"] != "WARN" || warnings[0]["variables"] != "HEADCOUNT_HEARTBAET,HEADCOUNT_METRIC_ADDR" {
		t.Errorf("want one warning naming HEADCOUNT_HEARTBAET,HEADCOUNT_METRIC_ADDR; got %v\n%s", warnings, in.log)
	}
	clean := start(t, map[string]string{"HEADCOUNT_HEARTBEAT": "1s"})
	if strings.Contains(clean.log.String(), "unknown HEADCOUNT_") {
		t.Errorf("a warning with no unknown variable:\n%s", clean.log)
	}
}

// TestJSONLogs checks HEADCOUNT_LOG_FORMAT=json: every line is one JSON
// object, the start-up line and request lines included.
func TestJSONLogs(t *testing.T) {
	in := launch(t, map[string]string{"HEADCOUNT_ADDR": "127.0.0.1:0", "HEADCOUNT_LOG_FORMAT": "json", "HEADCOUNT_LOG_LEVEL": "debug"})
	var addr string
	lines := func() []map[string]any {
		var out []map[string]any
		text := in.log.String()
		for line := range strings.SplitSeq(strings.TrimSuffix(text, "\n"), "\n") {
			if line == "" {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("a log line that is not JSON: %q", line)
			}
			out = append(out, rec)
		}
		return out
	}
	if err := poll.Until(startTimeout, func() bool {
		for _, rec := range lines() {
			if rec["msg"] == "headcount listening" {
				addr, _ = rec["addr"].(string)
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("no JSON start-up line:\n%s", in.log)
	}
	c := newClient(t, addr)
	resp, body := fetch(t, c, newRequest(t, http.MethodGet, "http://"+addr+"/healthz", nil))
	expect(t, resp, body, http.StatusOK)
	if err := poll.Until(startTimeout, func() bool {
		for _, rec := range lines() {
			if rec["msg"] == "request" && rec["route"] == "/healthz" && rec["level"] == "DEBUG" && rec["client"] == "127.0.0.1" {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("no JSON request line for /healthz at DEBUG:\n%s", in.log)
	}
}

// TestProbesLogAtDebug checks that at the default level probes and
// scrapes leave no line while other requests do.
func TestProbesLogAtDebug(t *testing.T) {
	in := start(t, nil)
	c := newClient(t, in.addr)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/api/count"} {
		fetch(t, c, newRequest(t, http.MethodGet, in.url+path, nil))
	}
	if err := poll.Until(startTimeout, func() bool { return len(in.log.all("request")) > 0 }); err != nil {
		t.Fatalf("no request line for /api/count:\n%s", in.log)
	}
	for _, rec := range in.log.all("request") {
		if rec["route"] != "/api/count" {
			t.Errorf("a probe or scrape logged at the default level: %v", rec)
		}
	}
}

// TestMetricsAddress checks HEADCOUNT_METRICS_ADDR: the metrics are served
// there, GET and HEAD, and the main address answers 404 for them.
func TestMetricsAddress(t *testing.T) {
	in := start(t, map[string]string{"HEADCOUNT_METRICS_ADDR": "127.0.0.1:0"})
	rec, _ := in.log.find("headcount listening")
	metricsAddr := rec["metrics"]
	if _, _, err := net.SplitHostPort(metricsAddr); err != nil {
		t.Fatalf("listening line names no metrics address: %v", rec)
	}
	c := newClient(t, in.addr)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, body := fetch(t, c, newRequest(t, method, in.url+"/metrics", nil))
		expect(t, resp, body, http.StatusNotFound)
	}
	m := newClient(t, metricsAddr)
	resp, body := fetch(t, m, newRequest(t, http.MethodGet, "http://"+metricsAddr+"/metrics", nil))
	expect(t, resp, body, http.StatusOK)
	for _, name := range []string{"headcount_subscribers", "headcount_user_count", "headcount_ready 1",
		"headcount_connections_without_stream", "headcount_connections_refused_total 0"} {
		if !strings.Contains(body, name) {
			t.Errorf("metrics on %s lack %s", metricsAddr, name)
		}
	}
	resp, body = fetch(t, m, newRequest(t, http.MethodHead, "http://"+metricsAddr+"/metrics", nil))
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD /metrics on the metrics address: %d with %d bytes, want 200 and none", resp.StatusCode, len(body))
	}
	resp, body = fetch(t, m, newRequest(t, http.MethodGet, "http://"+metricsAddr+"/", nil))
	expect(t, resp, body, http.StatusNotFound)
}

// TestHEADAnswersEveryGET checks that each GET route answers HEAD with the
// same status and no body, and that HEAD /events opens no stream.
func TestHEADAnswersEveryGET(t *testing.T) {
	in := start(t, nil)
	alice := signIn(t, newClient(t, in.addr), in.url, "alice")
	bearer := "Bearer " + alice.token
	// No cookies: a request is signed in by its bearer or not at all.
	c := newClient(t, in.addr)
	c.Jar = nil
	for _, tc := range []struct{ path, auth string }{
		{"/", ""},
		{"/static/style.css", ""},
		{"/static/no-such.css", ""},
		{"/auth/github", ""},
		{"/auth/github/callback", ""},
		{"/healthz", ""},
		{"/readyz", ""},
		{"/metrics", ""},
		{"/api/count", bearer},
		{"/api/count", ""},
		{"/api/presence", bearer},
		{"/events", bearer},
		{"/events", ""},
		{"/no/such/page", ""},
	} {
		get := newRequest(t, http.MethodGet, in.url+tc.path, nil)
		head := newRequest(t, http.MethodHead, in.url+tc.path, nil)
		if tc.auth != "" {
			get.Header.Set("Authorization", tc.auth)
			head.Header.Set("Authorization", tc.auth)
		}
		hresp, hbody := fetch(t, c, head)
		if hbody != "" {
			t.Errorf("HEAD %s: %d bytes of body, want none", tc.path, len(hbody))
		}
		if tc.path == "/events" && tc.auth != "" {
			if hresp.StatusCode != http.StatusOK || hresp.Header.Get("Content-Type") != "text/event-stream" {
				t.Errorf("HEAD /events: %d %q, want 200 text/event-stream", hresp.StatusCode, hresp.Header.Get("Content-Type"))
			}
			if n := count(t, c, in.url, alice.token); n != 0 {
				t.Errorf("HEAD /events moved the count to %d", n)
			}
			continue
		}
		gresp, _ := fetch(t, c, get)
		if hresp.StatusCode != gresp.StatusCode || hresp.StatusCode == http.StatusMethodNotAllowed {
			t.Errorf("HEAD %s: %d, GET: %d; want the same, and never 405", tc.path, hresp.StatusCode, gresp.StatusCode)
		}
		if ct := gresp.Header.Get("Content-Type"); gresp.StatusCode < 400 && hresp.Header.Get("Content-Type") != ct {
			t.Errorf("HEAD %s: Content-Type %q, GET's %q", tc.path, hresp.Header.Get("Content-Type"), ct)
		}
	}
}

// TestSignInMovesToThePublicHost checks that sign-in started under another
// host than the public URL's (127.0.0.1 where it says localhost) is sent
// to the public URL before any state cookie is set, and then works.
func TestSignInMovesToThePublicHost(t *testing.T) {
	in := start(t, nil)
	c := newClient(t, in.addr)
	resp, body := fetch(t, c, newRequest(t, http.MethodGet, "http://"+in.addr+"/auth/github", nil))
	expect(t, resp, body, http.StatusFound)
	if to := resp.Header.Get("Location"); to != in.url+"/auth/github" {
		t.Errorf("sign-in at %s sent to %q, want %s/auth/github", in.addr, to, in.url)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("sign-in on the wrong host set cookies: %v", resp.Cookies())
	}
	resp, body = fetch(t, c, newRequest(t, http.MethodGet, in.url+"/auth/github", nil))
	expect(t, resp, body, http.StatusFound)
	if len(resp.Cookies()) == 0 || strings.HasPrefix(resp.Header.Get("Location"), in.url+"/auth/github") {
		t.Errorf("sign-in on the public host: to %q with cookies %v; want the provider and a state cookie", resp.Header.Get("Location"), resp.Cookies())
	}
	signIn(t, c, in.url, "alice")
}

// TestClientAddressFromTrustedProxy checks request lines' client address:
// X-Forwarded-For is believed only from HEADCOUNT_TRUSTED_PROXIES, and
// then only as far as trusted proxies wrote it.
func TestClientAddressFromTrustedProxy(t *testing.T) {
	for _, tc := range []struct {
		name, trusted, forwarded, want string
	}{
		{"no proxy trusted", "", "203.0.113.7", "127.0.0.1"},
		{"trusted proxy", "127.0.0.1", "203.0.113.7", "203.0.113.7"},
		{"a client's own header before the proxy's", "127.0.0.0/8", "198.51.100.1, 203.0.113.7", "203.0.113.7"},
		{"two trusted hops", "127.0.0.1,10.0.0.0/8", "203.0.113.7, 10.1.2.3", "203.0.113.7"},
		{"garbage from a trusted proxy", "127.0.0.1", "not-an-ip", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := start(t, map[string]string{"HEADCOUNT_TRUSTED_PROXIES": tc.trusted})
			c := newClient(t, in.addr)
			req := newRequest(t, http.MethodGet, in.url+"/api/count", nil)
			req.Header.Set("X-Forwarded-For", tc.forwarded)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err := poll.Until(startTimeout, func() bool { return len(in.log.all("request")) > 0 }); err != nil {
				t.Fatal("no request line")
			}
			if got := in.log.all("request")[0]["client"]; got != tc.want {
				t.Errorf("client=%q, want %q", got, tc.want)
			}
		})
	}
}
