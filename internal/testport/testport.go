// Package testport finds ports for servers a test starts as separate
// processes (Redis, nginx, Caddy, headcount itself), which must be told a
// port before they listen.
//
// A port from the kernel's ephemeral range (what listening on :0 hands
// out) is not safe for that: between the test closing its probe and the
// server binding, any outgoing connection on the machine may take it as
// its local port, and the server's bind fails with "address already in
// use". On a busy machine that happens. Ports below the ephemeral range
// are never handed out that way. Two tests (in one process or in two, as
// go test runs packages side by side) picking the same one at random is
// prevented by a lock on a file named after the port, held until the
// test ends; the kernel drops it if the process dies.
package testport

import (
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// lowest is the least port handed out: above the well-known and the
// commonly configured ones.
const lowest = 10000

// Free returns a port below the ephemeral range on which nothing listens
// now, on TCP or UDP (a proxy serving HTTP/3 takes the UDP port beside
// the TCP one), on the loopback address or the wildcard one, and which no
// other test is told until this one ends. Each offset in also (10000: a
// Redis Cluster node's bus) names one more port, port plus it, that must
// be free too and is held as well.
func Free(t testing.TB, also ...int) int {
	t.Helper()
	top := ephemeralStart() - 1
	for _, d := range also {
		top = min(top, ephemeralStart()-1-d)
	}
	if top <= lowest {
		t.Fatalf("testport: no room below the ephemeral range (it starts at %d)", ephemeralStart())
	}
	dir := filepath.Join(os.TempDir(), "headcount-testport")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		port := lowest + rand.IntN(top-lowest+1)
		ports := []int{port}
		for _, d := range also {
			ports = append(ports, port+d)
		}
		var locks []*os.File
		ok := true
		for _, p := range ports {
			lock, claimed := claim(dir, p)
			if !claimed || !free(p) {
				if claimed {
					lock.Close()
				}
				ok = false
				break
			}
			locks = append(locks, lock)
		}
		if ok {
			t.Cleanup(func() {
				for _, l := range locks {
					l.Close()
				}
			})
			return port
		}
		for _, l := range locks {
			l.Close()
		}
	}
	t.Fatal("testport: no free port found in 200 tries")
	return 0
}

// claim takes the lock on port's file in dir, and reports false if
// another test holds it.
func claim(dir string, port int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// free reports whether port can be bound now, for TCP and UDP, on the
// wildcard address (which fails if any address holds it).
func free(port int) bool {
	addr := ":" + strconv.Itoa(port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (Linux's default, 32768, where it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= lowest {
		return 32768
	}
	return n
}
