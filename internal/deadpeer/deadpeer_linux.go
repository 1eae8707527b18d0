// Package deadpeer makes a listener whose connections find a vanished
// peer: one whose network silently dropped, without a FIN or an RST.
package deadpeer

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// listener sets TCP_USER_TIMEOUT on every accepted connection. A
// client whose network silently drops (no FIN, no RST) leaves heartbeats
// unacknowledged in the kernel's send buffer, where a write still succeeds
// and TCP keep-alive is never armed; Linux would retransmit for about 15
// minutes before giving up, and the client would be counted all that time.
// With the option the kernel drops such a connection once sent data has
// gone unacknowledged for the timeout, the stream's next read or write
// fails, and the count goes down.
type listener struct {
	net.Listener
	timeout time.Duration
}

// Accept accepts a connection and bounds how long its sent data may stay
// unacknowledged.
func (l listener) Accept() (net.Conn, error) {
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

// Listen wraps ln so that the peers of its connections are dropped once
// data sent to them has gone unacknowledged for timeout.
func Listen(ln net.Listener, timeout time.Duration) net.Listener {
	return listener{Listener: ln, timeout: timeout}
}
