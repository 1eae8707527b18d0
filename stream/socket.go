package stream

import (
	"crypto/tls"
	"net"
	"syscall"
)

// socketOf is the socket under c, through TLS and listener wrappers that
// unwrap with NetConn, or nil where there is none (a test's pipe).
func socketOf(c net.Conn) syscall.RawConn { return socketUnder(c, true) }

// plainSocketOf is socketOf for a connection that is not TLS: nil if a
// layer of c is.
func plainSocketOf(c net.Conn) syscall.RawConn { return socketUnder(c, false) }

// socketUnder unwraps c down to its socket, through TLS only if
// throughTLS.
func socketUnder(c net.Conn, throughTLS bool) syscall.RawConn {
	for c != nil {
		if _, isTLS := c.(*tls.Conn); isTLS && !throughTLS {
			return nil
		}
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
