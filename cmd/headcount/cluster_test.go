//go:build unix

package main

import (
	"bufio"
	"github.com/headcount/headcount/internal/ci"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/testport"
)

// go tool task cluster (scripts/cluster.sh): with no Redis at its URL it
// starts one, runs two instances on the given ports with one generated
// secret and prints their URLs; a token minted on one is good on the
// other, both count the same streams, and Ctrl-C stops everything,
// Redis included.
func TestClusterTask(t *testing.T) {
	t.Parallel() // its Redis and ports are its own
	if _, err := exec.LookPath("redis-server"); err != nil {
		ci.Missing(t, "redis-server", "apt-get install redis-server")
	}
	redisAddr, portA, portB := freeAddr(t), freeAddr(t), freeAddr(t)
	_, pa, _ := net.SplitHostPort(portA)
	_, pb, _ := net.SplitHostPort(portB)
	cmd := exec.Command("bash", "../../scripts/cluster.sh", pa, pb)
	// The binary TestMain built, so the test does not build another.
	cmd.Env = append(os.Environ(), "HEADCOUNT_REDIS_URL=redis://"+redisAddr, "CLUSTER_BINARY="+binary)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})

	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var printed []string
	deadline := time.After(startTimeout)
	for ready := false; !ready; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the script ended early:\n%s", strings.Join(printed, "\n"))
			}
			printed = append(printed, line)
			ready = strings.HasPrefix(line, "Ctrl-C stops them")
		case <-deadline:
			t.Fatalf("no URLs printed within %v:\n%s", startTimeout, strings.Join(printed, "\n"))
		}
	}
	go func() { // keep draining, so the instances never block on their log
		for range lines {
		}
	}()
	all := strings.Join(printed, "\n")
	urlA, urlB := "http://localhost:"+pa, "http://localhost:"+pb
	for _, want := range []string{"starting redis-server on " + redisAddr, "  " + urlA, "  " + urlB} {
		if !strings.Contains(all, want) {
			t.Errorf("the script did not print %q:\n%s", want, all)
		}
	}

	ca, cb := newClient(t, portA), newClient(t, portB)
	tok := signIn(t, ca, urlA, "ada").token
	openStream(t, ca, urlA, tok)
	s := openStream(t, cb, urlB, tok) // A's token on B: one secret
	if err := s.WaitLast(5*time.Second, "2"); err != nil {
		t.Errorf("B does not count A's stream: %v", err)
	}

	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the script exited with %v after Ctrl-C, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the script still runs 10 s after Ctrl-C")
	}
	for _, addr := range []string{redisAddr, portA, portB} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still answers after Ctrl-C", addr)
		}
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testport.Free(t)))
}
