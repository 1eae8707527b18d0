package deploy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/internal/testport"
)

// nginxFiles are the nginx configurations the guide shows.
var nginxFiles = []string{"nginx/headcount.conf", "nginx/headcount-plain.conf"}

// TestNginxFilesHoldStreams checks what each nginx configuration must say
// for the stream to work, line by line: these are the mistakes that pass a
// quick look and cut streams later.
func TestNginxFilesHoldStreams(t *testing.T) {
	for _, file := range nginxFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		conf := string(b)
		for _, want := range []string{
			"proxy_buffering off;",
			"proxy_http_version 1.1;",
			`proxy_set_header Connection "";`,
			"proxy_set_header Host $host;",
			"proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
			"proxy_set_header X-Forwarded-Proto $scheme;",
			"location = /metrics {",
		} {
			if !strings.Contains(conf, want) {
				t.Errorf("%s lacks %q", file, want)
			}
		}
		m := regexp.MustCompile(`proxy_read_timeout (\d+)([smh]);`).FindStringSubmatch(conf)
		if m == nil {
			t.Errorf("%s sets no proxy_read_timeout (nginx's 60s default is too close to the heartbeat)", file)
			continue
		}
		d, err := time.ParseDuration(m[1] + m[2])
		if err != nil || d < 4*config.DefaultHeartbeat {
			t.Errorf("%s: proxy_read_timeout %s%s; want well above the heartbeat (%v), at least %v", file, m[1], m[2], config.DefaultHeartbeat, 4*config.DefaultHeartbeat)
		}
	}
	caddy, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"flush_interval -1", "respond /metrics 404", "health_uri /readyz"} {
		if !strings.Contains(string(caddy), want) {
			t.Errorf("Caddyfile lacks %q", want)
		}
	}
}

// TestGuideShowsTheFiles checks that docs/DEPLOY.md shows each file of
// deploy/ exactly as it is, so what the guide says is what the tests run.
func TestGuideShowsTheFiles(t *testing.T) {
	guide, err := os.ReadFile("../docs/DEPLOY.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range append(nginxFiles, "Caddyfile", "headcount.service", "headcount.env") {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(guide), "\n"+string(b)+"```") {
			t.Errorf("docs/DEPLOY.md does not show deploy/%s as it is (in a code block of its own)", file)
		}
	}
	if !strings.Contains(string(guide), "deploy/prometheus/headcount-alerts.yml") {
		t.Error("docs/DEPLOY.md does not point to the alert rules")
	}
}

// TestEnvironmentFileIsValid checks that the example environment file is
// a configuration headcount accepts, with no variable it does not know.
func TestEnvironmentFileIsValid(t *testing.T) {
	b, err := os.ReadFile("headcount.env")
	if err != nil {
		t.Fatal(err)
	}
	var environ []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			environ = append(environ, line)
		}
	}
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	if _, err := config.Load(func(k string) string { return vars[k] }); err != nil {
		t.Errorf("headcount.env is refused: %v", err)
	}
	if unknown := config.Unknown(environ); len(unknown) > 0 {
		t.Errorf("headcount.env sets variables headcount does not read: %v", unknown)
	}
}

// TestSystemdUnit checks deploy/headcount.service with systemd-analyze:
// it verifies, it is hardened (an exposure score of at most 2.5 of 10),
// and it has what the guide promises.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("headcount.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"DynamicUser=yes", "NoNewPrivileges=yes", "LimitNOFILE=", "EnvironmentFile=/etc/headcount/headcount.env", "ExecStart=/usr/local/bin/headcount", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(unit, want) {
			t.Errorf("headcount.service lacks %q", want)
		}
	}
	analyze := need(t, "systemd-analyze", "apt-get install systemd")
	// The binary the unit starts must exist for verify: use the test's.
	dir := t.TempDir()
	path := filepath.Join(dir, "headcount.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/headcount", binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if out, err := execOutput(ctx, analyze, "verify", "--man=no", path); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	if out, err := execOutput(ctx, analyze, "security", "--offline=yes", "--threshold=25", path); err != nil {
		t.Errorf("systemd-analyze security: exposure over 2.5 (%v):\n%s", err, out)
	}
}

// TestAlertRules checks deploy/prometheus/headcount-alerts.yml: it parses
// as Prometheus rule groups, every rule is complete, and every metric it
// names is one a running headcount exposes.
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("prometheus/headcount-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("the alert rules do not parse: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	p := startHeadcount(t, "headcount", addr, map[string]string{"HEADCOUNT_METRICS_ADDR": metricsAddr})
	waitFor(t, p, "http://"+metricsAddr+"/metrics")
	client := &http.Client{Timeout: waitTimeout}
	defer client.CloseIdleConnections()
	// A failed sign-in and a refused request, so the counters by reason
	// have a series to show.
	for _, path := range []string{"/auth/github/callback", "/api/count"} {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("GET %s: %d, want a 4xx", path, resp.StatusCode)
		}
	}
	resp, err := client.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	exposed, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	metric := regexp.MustCompile(`\b(?:headcount|process)_[a-z_]+\b`)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v lacks its name, expression, severity or summary", r)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for: %q is not a duration", r.Alert, r.For)
				}
			}
			for _, name := range metric.FindAllString(r.Expr, -1) {
				if !regexp.MustCompile(`(?m)^` + name + `[{ ]`).Match(exposed) {
					t.Errorf("%s uses %s, which headcount's /metrics does not have", r.Alert, name)
				}
			}
		}
	}
	if n < 5 {
		t.Errorf("%d alert rules, want the five or more the guide describes", n)
	}
}
