package stream

import (
	"crypto/tls"
	"net"
	"syscall"
)

// socketOf is the socket under c, through TLS and listener wrappers that
// unwrap with NetConn, or nil where there is none (a test's pipe).
func socketOf(c net.Conn) syscall.RawConn { return rawOf(under(c, true)) }

// under is the innermost connection of c, the one that holds the socket
// (a syscall.Conn), through listener wrappers that unwrap with NetConn and
// through TLS only if throughTLS; nil where there is none. Below TLS it is
// the same byte stream as c: listener wrappers count and close
// connections, they do not change what is written.
func under(c net.Conn, throughTLS bool) net.Conn {
	for c != nil {
		if _, isTLS := c.(*tls.Conn); isTLS && !throughTLS {
			return nil
		}
		if _, ok := c.(syscall.Conn); ok {
			return c
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// rawOf is c's socket, or nil.
func rawOf(c net.Conn) syscall.RawConn {
	if c == nil {
		return nil
	}
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}
