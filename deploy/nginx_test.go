package deploy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/fakegithub"
	"github.com/headcount/headcount/internal/redistest"
	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/internal/testcert"
	"github.com/headcount/headcount/internal/testport"
)

// The fake GitHub's OAuth app.
const (
	githubClientID     = "headcount-deploy"
	githubClientSecret = "deploy-client-secret"
)

// heartbeat is the instances' HEADCOUNT_HEARTBEAT: short, so the test
// sees comments pass nginx unbuffered without waiting 15 s.
const heartbeat = 300 * time.Millisecond

// clientIP is the address the test's client connects to nginx from, so
// the instances' request logs can tell it from nginx's own 127.0.0.1.
var clientIP = net.IPv4(127, 0, 0, 2)

// replacement is one text of a guide's file the test changes, and how
// many times it must be there.
type replacement struct {
	old, new string
	times    int
}

// templated is the guide's file with the test's ports, names and
// certificate in place of the example ones. Each replaced text must be in
// the file exactly as often as said, so an edit of the file the test does
// not follow fails here instead of testing something else.
func templated(t *testing.T, file string, repls []replacement) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, r := range repls {
		if n := strings.Count(conf, r.old); n != r.times {
			t.Fatalf("%s has %q %d times, the test expects %d: update the test with the file", file, r.old, n, r.times)
		}
		conf = strings.ReplaceAll(conf, r.old, r.new)
	}
	return conf
}

// nginx is an nginx the test started with one configuration file of the
// guide included in its http block.
type nginx struct {
	*process
	dir string
}

// startNginx runs nginx in the foreground with site (a server-block
// configuration) and waits until it answers on probe.
func startNginx(t *testing.T, site string, probe int) *nginx {
	t.Helper()
	bin := need(t, "nginx", "apt-get install nginx")
	dir := t.TempDir()
	for _, d := range []string{"tmp", "logs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody, who cannot read the
		// test's private temporary directory.
		user = "user root;"
	}
	main := fmt.Sprintf(`%s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log info;
events { worker_connections 1024; }
http {
    access_log %[2]s/logs/access.log;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    include %[2]s/site.conf;
}
`, user, dir)
	for name, text := range map[string]string{"nginx.conf": main, "site.conf": site} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "logs", "error.log")}
	// nginx -t first, as the guide says: a configuration error is then
	// reported as such.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if out, err := execOutput(ctx, append(args, "-t")...); err != nil {
		t.Fatalf("nginx -t: %v\n%s\nsite.conf:\n%s", err, out, site)
	}
	// SIGQUIT: nginx's graceful stop.
	p := startProcess(t, "nginx", nil, syscall.SIGQUIT, args...)
	n := &nginx{process: p, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	waitListening(t, p, probe)
	return n
}

// cluster is two headcount instances on one Redis behind nginx, signing
// in against a fake GitHub.
type cluster struct {
	base      string // the public URL, through the proxy
	instances [2]string
	procs     [2]*process
	gh        *fakegithub.Server
}

// startInstances starts two instances on free ports, sharing a Redis
// database and a session secret, with base as their public URL.
func startInstances(t *testing.T, base string, ports [2]int) *cluster {
	t.Helper()
	rdb := redistest.Start(t)
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	c := &cluster{base: base, gh: fakegithub.Start(t, githubClientID, githubClientSecret)}
	vars := map[string]string{
		"HEADCOUNT_BASE_URL":        base,
		"HEADCOUNT_SESSION_SECRET":  hex.EncodeToString(secret),
		"HEADCOUNT_REDIS_URL":       rdb.URL() + "/0",
		"HEADCOUNT_HEARTBEAT":       heartbeat.String(),
		"HEADCOUNT_TRUSTED_PROXIES": "127.0.0.1",
		"GITHUB_KEY":                githubClientID,
		"GITHUB_SECRET":             githubClientSecret,
		"GITHUB_AUTH_URL":           c.gh.AuthURL(),
		"GITHUB_TOKEN_URL":          c.gh.TokenURL(),
		"GITHUB_PROFILE_URL":        c.gh.ProfileURL(),
		"GITHUB_EMAIL_URL":          c.gh.EmailURL(),
	}
	for i, port := range ports {
		c.instances[i] = "127.0.0.1:" + strconv.Itoa(port)
		c.procs[i] = startHeadcount(t, fmt.Sprintf("headcount %c", 'A'+i), c.instances[i], vars)
	}
	return c
}

// newClient is a browser-like client: its own cookie jar, trusting the
// test's CA (nil: plain HTTP), connecting from clientIP, and never
// reusing another test's connections.
func newClient(t *testing.T, cert *testcert.Cert) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: clientIP}}
	tr := &http.Transport{DialContext: dialer.DialContext, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4}
	if cert != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: cert.Pool, MinVersion: tls.VersionTLS12}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 0}
}

// signIn goes through GitHub sign-in from the public URL, as a browser
// would, and checks it ends on the signed-in page.
func (c *cluster) signIn(t *testing.T, client *http.Client, wantProto int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/auth/github", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != c.base+"/" || !strings.Contains(string(body), `id="user-name"`) {
		t.Fatalf("sign-in through the proxy ended at %s with %d, not on the signed-in page:\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	if resp.ProtoMajor != wantProto {
		t.Errorf("the signed-in page came over %s, want HTTP/%d", resp.Proto, wantProto)
	}
}

// subscribers reads headcount_subscribers from an instance's /metrics,
// asked directly (nginx does not serve it).
func subscribers(t *testing.T, addr string) int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^headcount_subscribers (\d+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no headcount_subscribers on %s/metrics", addr)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// lastCount is the data of the latest "user count" event.
func lastCount(events []ssetest.Event) string {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Event == "user count" {
			return events[i].Data
		}
	}
	return ""
}

// waitCount waits until every stream's latest count is want.
func waitCount(t *testing.T, want int, streams ...*ssetest.Stream) {
	t.Helper()
	for i, s := range streams {
		err := s.Wait(waitTimeout, func(events []ssetest.Event, _ []string, ended bool) bool {
			return ended || lastCount(events) == strconv.Itoa(want)
		})
		if ended, why := s.Ended(); ended {
			t.Fatalf("stream %d ended (%v) while waiting for the count %d", i, why, want)
		}
		if err != nil {
			last, _ := s.Last()
			t.Fatalf("stream %d: count %q, want %d within %v", i, last.Data, want, waitTimeout)
		}
	}
}

// openStreams opens n streams through the proxy with the client's session.
func openStreams(t *testing.T, client *http.Client, base string, n, wantProto int) []*ssetest.Stream {
	t.Helper()
	var streams []*ssetest.Stream
	for i := range n {
		s, err := ssetest.Open(t, client, base+"/events", nil)
		if err != nil {
			t.Fatalf("stream %d through the proxy: %v", i, err)
		}
		if s.Response.ProtoMajor != wantProto {
			t.Fatalf("stream %d came over %s, want HTTP/%d", i, s.Response.Proto, wantProto)
		}
		if got := s.Response.Header.Get("Content-Type"); got != "text/event-stream" {
			t.Fatalf("stream %d: Content-Type %q", i, got)
		}
		streams = append(streams, s)
	}
	return streams
}

// checkThroughProxy is what both configurations must do: heartbeats pass
// unbuffered, /metrics stays inside, both instances take streams, and the
// instances log the client's address from X-Forwarded-For.
func (c *cluster) checkThroughProxy(t *testing.T, client *http.Client, streams []*ssetest.Stream) {
	t.Helper()
	err := streams[0].Wait(waitTimeout, func(_ []ssetest.Event, comments []string, _ bool) bool { return len(comments) >= 2 })
	if err != nil {
		t.Errorf("no two heartbeats through the proxy within %v (buffered?): comments %q", waitTimeout, streams[0].Comments())
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics through the proxy: %d, want 404", resp.StatusCode)
	}
	a, b := subscribers(t, c.instances[0]), subscribers(t, c.instances[1])
	if a+b != len(streams) || (len(streams) > 1 && (a == 0 || b == 0)) {
		t.Errorf("instances hold %d and %d streams, want %d between both", a, b, len(streams))
	}
	for _, p := range c.procs {
		if !strings.Contains(p.out.String(), "client="+clientIP.String()) {
			t.Errorf("%s's request log does not name the client %s (X-Forwarded-For from a trusted proxy):\n%s", p.name, clientIP, p.out)
		}
	}
}

// TestNginxTLSAndHTTP2 runs nginx with deploy/nginx/headcount.conf in front
// of two instances on Redis: sign-in through the proxy, the count moving
// as streams come and go, ten streams held over HTTP/2 at once.
func TestNginxTLSAndHTTP2(t *testing.T) {
	httpPort, tlsPort := testport.Free(t), testport.Free(t)
	ports := [2]int{testport.Free(t), testport.Free(t)}
	cert := testcert.Write(t, t.TempDir())
	site := templated(t, "nginx/headcount.conf", []replacement{
		{"server 127.0.0.1:8080;", fmt.Sprintf("server 127.0.0.1:%d;", ports[0]), 1},
		{"server 127.0.0.1:8081;", fmt.Sprintf("server 127.0.0.1:%d;", ports[1]), 1},
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", httpPort), 1},
		{"listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", tlsPort), 1},
		// The test's machine may have no IPv6.
		{"listen [::]:80;", "", 1},
		{"listen [::]:443 ssl http2;", "", 1},
		{"server_name headcount.example.com;", "server_name localhost;", 2},
		{"/etc/letsencrypt/live/headcount.example.com/fullchain.pem", cert.CertFile, 1},
		{"/etc/letsencrypt/live/headcount.example.com/privkey.pem", cert.KeyFile, 1},
	})
	base := fmt.Sprintf("https://localhost:%d", tlsPort)
	c := startInstances(t, base, ports)
	startNginx(t, site, tlsPort)

	// Plain HTTP is sent to HTTPS.
	plain := newClient(t, nil)
	plain.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := plain.Get(fmt.Sprintf("http://localhost:%d/", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(resp.Header.Get("Location"), "https://localhost") {
		t.Errorf("plain HTTP: %d to %q, want 301 to https://localhost...", resp.StatusCode, resp.Header.Get("Location"))
	}

	client := newClient(t, cert)
	c.signIn(t, client, 2)
	first := openStreams(t, client, base, 1, 2)
	waitCount(t, 1, first...)
	more := openStreams(t, client, base, 9, 2)
	all := append(first, more...)
	waitCount(t, 10, all...)
	c.checkThroughProxy(t, client, all)

	for _, s := range all[6:] {
		s.Close()
	}
	waitCount(t, 6, all[:6]...)
	// A second person, signed in through the proxy, joins the count.
	other := newClient(t, cert)
	c.signIn(t, other, 2)
	theirs := openStreams(t, other, base, 1, 2)
	waitCount(t, 7, append(all[:6], theirs...)...)
}

// TestNginxPlain runs nginx with deploy/nginx/headcount-plain.conf in front
// of two instances on Redis.
func TestNginxPlain(t *testing.T) {
	httpPort := testport.Free(t)
	ports := [2]int{testport.Free(t), testport.Free(t)}
	site := templated(t, "nginx/headcount-plain.conf", []replacement{
		{"server 127.0.0.1:8080;", fmt.Sprintf("server 127.0.0.1:%d;", ports[0]), 1},
		{"server 127.0.0.1:8081;", fmt.Sprintf("server 127.0.0.1:%d;", ports[1]), 1},
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", httpPort), 1},
		{"listen [::]:80;", "", 1},
		{"server_name headcount.example.com;", "server_name localhost;", 1},
	})
	base := fmt.Sprintf("http://localhost:%d", httpPort)
	c := startInstances(t, base, ports)
	startNginx(t, site, httpPort)

	client := newClient(t, nil)
	c.signIn(t, client, 1)
	streams := openStreams(t, client, base, 2, 1)
	waitCount(t, 2, streams...)
	c.checkThroughProxy(t, client, streams)
	streams[1].Close()
	waitCount(t, 1, streams[0])
}
