//go:build linux

package stream

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// congested reports whether the client's socket has no room for more:
// the kernel holds as much as it may for a client that does not read, or
// reads too slowly (poll(2) does not find it writable, the test the
// runtime's poller waits on). A write that long on such a socket is
// stuck. One that has merely not had the CPU back is not, and the client
// is not to blame: a goroutine whose write(2) ran long loses its
// processor and waits behind every runnable goroutine for one, 100 ms and
// more with tens of thousands of subscribers catching up. Where the
// socket cannot be asked (raw is nil, or the call fails) it reports true:
// a long write is then taken as stuck.
func congested(raw syscall.RawConn) bool {
	if raw == nil {
		return true
	}
	full := true
	_ = raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, 0); err == nil {
			full = fds[0].Revents&unix.POLLOUT == 0
		}
	})
	return full
}
