package handlers_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/internal/poll"
)

// vanishChild marks the run of this test inside its own network namespace.
const vanishChild = "HEADCOUNT_TEST_VANISH_CHILD"

// TestVanishedClientIsCountedOut cuts a client's network without a FIN or
// an RST, the way a laptop that loses Wi-Fi does, right after a heartbeat
// reached it (the worst moment), and requires the server to count it out
// within one heartbeat + 10 s, as the README promises (a dead-peer timeout
// of heartbeat + 10 s made it two heartbeats + 10 s: 40 s at the default
// heartbeat). The test runs itself again in a network namespace of its own
// (unshare -n), whose loopback it can take down without touching the
// machine's.
func TestVanishedClientIsCountedOut(t *testing.T) {
	if os.Getenv(vanishChild) == "1" {
		vanishInNamespace(t)
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux) to make a network namespace")
	}
	cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run=^TestVanishedClientIsCountedOut$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), vanishChild+"=1")
	out, err := cmd.CombinedOutput()
	switch {
	case strings.Contains(string(out), "unshare failed") || strings.Contains(string(out), "Operation not permitted"):
		t.Skipf("cannot make a network namespace here (needs root or user namespaces):\n%s", out)
	case err != nil:
		t.Fatalf("in its own network namespace: %v\n%s", err, out)
	case !strings.Contains(string(out), "--- PASS: TestVanishedClientIsCountedOut"):
		t.Fatalf("the child did not run the test:\n%s", out)
	}
}

func vanishInNamespace(t *testing.T) {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	// Long enough that one heartbeat more than promised shows.
	const heartbeat = 3 * time.Second
	e := startDev(t, map[string]string{"HEADCOUNT_HEARTBEAT": heartbeat.String()})
	c := browser(t)
	e.devSignIn(c, "walker")
	token := e.token(c)

	conn, err := net.Dial("tcp", e.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n", token)
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(waitTime + heartbeat))
	counted := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		counted = counted || strings.HasPrefix(line, "data: 1")
		if counted && strings.HasPrefix(line, ":") {
			break // a heartbeat: the next one is a whole interval away
		}
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo down: %v: %s", err, out)
	}
	// Mend the network before the other clean-ups, so the test's own
	// clients and server can close their connections.
	t.Cleanup(func() { exec.Command("ip", "link", "set", "lo", "up").Run() })
	cut := time.Now()
	// The kernel's own retransmissions would give up after about 15
	// minutes. The next heartbeat goes out one interval after the cut and
	// is never acknowledged; TCP_USER_TIMEOUT (config.DeadPeerGrace) drops
	// the connection that much later. The slack is under a heartbeat, so
	// two heartbeats + 10 s (the old bound) fail.
	limit := heartbeat + config.DeadPeerGrace + 2*time.Second
	if err := poll.Until(limit, func() bool { return e.srv.Hub().Stats().Subscribers == 0 }); err != nil {
		t.Fatalf("a client whose network vanished is still counted %v later: %+v", limit, e.srv.Hub().Stats())
	}
	t.Logf("counted out %v after its network vanished", time.Since(cut).Round(100*time.Millisecond))
}
