package stream

import (
	"net"
	"syscall"
)

// socketOf is the socket under c, through TLS and listener wrappers that
// unwrap with NetConn, or nil where there is none (a test's pipe).
func socketOf(c net.Conn) syscall.RawConn {
	for c != nil {
		if sc, ok := c.(syscall.Conn); ok {
			raw, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			return raw
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}
