package handlers

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// deadPeerListener sets TCP_USER_TIMEOUT on every accepted connection. A
// client whose network silently drops (no FIN, no RST) leaves heartbeats
// unacknowledged in the kernel's send buffer, where a write still succeeds
// and TCP keep-alive is never armed; Linux would retransmit for about 15
// minutes before giving up, and the client would be counted all that time.
// With the option the kernel drops such a connection once sent data has
// gone unacknowledged for the timeout, the stream's next read or write
// fails, and the count goes down.
type deadPeerListener struct {
	net.Listener
	timeout time.Duration
}

// Accept accepts a connection and bounds how long its sent data may stay
// unacknowledged.
func (l deadPeerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			ms := int(l.timeout / time.Millisecond)
			raw.Control(func(fd uintptr) {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
			})
		}
	}
	return c, nil
}

// detectDeadPeers wraps ln so dead peers are found within timeout.
func detectDeadPeers(ln net.Listener, timeout time.Duration) net.Listener {
	return deadPeerListener{Listener: ln, timeout: timeout}
}
