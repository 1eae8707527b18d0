//go:build unix

package main

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/headcount/headcount/internal/poll"
	"github.com/headcount/headcount/internal/testcert"
)

// serial is the serial number of the certificate addr serves now.
func serial(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: requestTimeout}, "tcp", addr,
		// Only the certificate is looked at; each renewal here has a new CA.
		&tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// waitSerial waits until addr serves the certificate with serial want.
func waitSerial(t *testing.T, addr, want, after string) {
	t.Helper()
	if err := poll.Until(requestTimeout, func() bool { return serial(t, addr) == want }); err != nil {
		t.Fatalf("%s: still serving serial %s, want %s", after, serial(t, addr), want)
	}
}

// TestCertificateReload renews the certificate under the running binary:
// SIGHUP takes the new one at once, a change of the files without a
// signal within seconds, and a broken renewal keeps the one in use.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	first := testcert.Write(t, dir)
	p := startProcess(t, map[string]string{"HEADCOUNT_TLS_CERT": first.CertFile, "HEADCOUNT_TLS_KEY": first.KeyFile})
	if got := serial(t, p.addr); got != first.Leaf.SerialNumber.String() {
		t.Fatalf("serving serial %s, want the first certificate's %s", got, first.Leaf.SerialNumber)
	}

	second := testcert.Write(t, dir)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSerial(t, p.addr, second.Leaf.SerialNumber.String(), "after SIGHUP")

	third := testcert.Write(t, dir)
	waitSerial(t, p.addr, third.Leaf.SerialNumber.String(), "after the files changed")
	if !strings.Contains(p.stdout.String(), "reason=SIGHUP") || !strings.Contains(p.stdout.String(), `reason="the files changed"`) {
		t.Errorf("the log does not say why each reload happened:\n%s", p.stdout)
	}

	// A renewal that does not load (a key for another certificate).
	other := testcert.Write(t, t.TempDir())
	key, err := os.ReadFile(other.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(third.KeyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := poll.Until(requestTimeout, func() bool { return strings.Contains(p.stdout.String(), "TLS certificate not reloaded") }); err != nil {
		t.Fatalf("no error logged for a key that does not match:\n%s", p.stdout)
	}
	if got := serial(t, p.addr); got != third.Leaf.SerialNumber.String() {
		t.Errorf("after a broken renewal: serving %s, want the last good one, %s", got, third.Leaf.SerialNumber)
	}
}
