package testport

import (
	"net"
	"strconv"
	"testing"
)

// Ports handed out lie below the ephemeral range, can be listened on,
// and are never handed out twice while the test holds them.
func TestFree(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		port := Free(t, 10000)
		if port < lowest || port+10000 >= ephemeralStart() {
			t.Fatalf("port %d (bus %d) is outside [%d, %d)", port, port+10000, lowest, ephemeralStart())
		}
		if seen[port] || seen[port+10000] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port], seen[port+10000] = true, true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("listening on the port handed out: %v", err)
		}
		ln.Close()
	}
}

// A port another test holds is not free for this one.
func TestFreeSkipsHeld(t *testing.T) {
	dir := t.TempDir()
	lock, ok := claim(dir, 12345)
	if !ok {
		t.Fatal("claiming an unheld port failed")
	}
	defer lock.Close()
	if _, ok := claim(dir, 12345); ok {
		t.Error("a held port was claimed again")
	}
}
