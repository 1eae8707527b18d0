package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/headcount/headcount/internal/testcert"
	"github.com/headcount/headcount/internal/testport"
)

// startCaddy runs Caddy in the foreground with site (the guide's Caddyfile,
// templated) under global options that keep it to the test's own ports and
// files, and waits until it answers on probe.
func startCaddy(t *testing.T, site string, probe int) {
	t.Helper()
	bin := need(t, "caddy", "apt-get install caddy")
	dir := t.TempDir()
	global := fmt.Sprintf(`{
	admin off
	auto_https disable_redirects
	http_port %d
	storage file_system {
		root %s
	}
}

`, testport.Free(t), filepath.Join(dir, "data"))
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(global+site), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if out, err := execOutput(ctx, bin, "validate", "--config", file, "--adapter", "caddyfile"); err != nil {
		t.Fatalf("caddy validate: %v\n%s\nCaddyfile:\n%s", err, out, global+site)
	}
	p := startProcess(t, "caddy", env, syscall.SIGTERM, bin, "run", "--config", file, "--adapter", "caddyfile")
	waitListening(t, p, probe)
}

// TestCaddy runs Caddy with deploy/Caddyfile in front of two instances on
// Redis: sign-in through it, ten streams over HTTP/2, the count moving.
func TestCaddy(t *testing.T) {
	tlsPort := testport.Free(t)
	ports := [2]int{testport.Free(t), testport.Free(t)}
	cert := testcert.Write(t, t.TempDir())
	site := templated(t, "Caddyfile", []replacement{
		// Caddy would get a certificate itself; the test has its own.
		{"headcount.example.com {", fmt.Sprintf("https://localhost:%d {\n\ttls %s %s", tlsPort, cert.CertFile, cert.KeyFile), 1},
		{"reverse_proxy 127.0.0.1:8080 127.0.0.1:8081 {", fmt.Sprintf("reverse_proxy 127.0.0.1:%d 127.0.0.1:%d {", ports[0], ports[1]), 1},
	})
	base := fmt.Sprintf("https://localhost:%d", tlsPort)
	c := startInstances(t, base, ports)
	startCaddy(t, site, tlsPort)

	client := newClient(t, cert)
	c.signIn(t, client, 2)
	first := openStreams(t, client, base, 1, 2)
	waitCount(t, 1, first...)
	all := append(first, openStreams(t, client, base, 9, 2)...)
	waitCount(t, 10, all...)
	c.checkThroughProxy(t, client, all)
	for _, s := range all[5:] {
		s.Close()
	}
	waitCount(t, 5, all[:5]...)
}
