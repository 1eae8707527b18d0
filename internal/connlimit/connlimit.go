// Package connlimit caps the connections of a listener that hold no
// stream. Streams have their own limit (HEADCOUNT_MAX_STREAMS); without
// this one, connections that never finish their request headers
// (slowloris) or sit idle could take every descriptor left, and with them
// health checks, Redis and the server's own dev sign-in calls.
package connlimit

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
)

// Listener admits connections while fewer than its cap hold no stream.
// Past the cap a new connection is closed at once; a connection that
// starts a stream (Hold) stops counting while it holds one.
type Listener struct {
	net.Listener
	max     int64
	other   atomic.Int64 // open connections holding no stream
	refused atomic.Int64
}

// Listen wraps ln; max 0 means no cap.
func Listen(ln net.Listener, max int) *Listener {
	return &Listener{Listener: ln, max: int64(max)}
}

// Accept returns the next connection the cap admits.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max > 0 && l.other.Load() >= l.max {
			l.refused.Add(1)
			c.Close()
			continue
		}
		l.other.Add(1)
		return &limitedConn{Conn: c, limit: l}, nil
	}
}

// Other is how many open connections hold no stream.
func (l *Listener) Other() int64 { return l.other.Load() }

// Refused is how many connections the cap closed on arrival.
func (l *Listener) Refused() int64 { return l.refused.Load() }

// limitedConn is an admitted connection; it knows whether it holds
// streams (more than one over HTTP/2).
type limitedConn struct {
	net.Conn
	limit *Listener

	mu      sync.Mutex
	streams int
	closed  bool
}

// NetConn is the connection underneath, as tls.Conn's NetConn: the hub
// asks its socket whether a client reads (stream.congested).
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

func (c *limitedConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if c.streams == 0 {
			c.limit.other.Add(-1)
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// holdStream moves the connection out of the cap while a stream lives on
// it; the returned function puts it back.
func (c *limitedConn) holdStream() func() {
	c.mu.Lock()
	if !c.closed && c.streams == 0 {
		c.limit.other.Add(-1)
	}
	c.streams++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.streams--
			if !c.closed && c.streams == 0 {
				c.limit.other.Add(1)
			}
			c.mu.Unlock()
		})
	}
}

// connKey is where ConnContext leaves the request's connection.
type connKey struct{}

// ConnContext is for http.Server's ConnContext: it remembers each
// request's connection, so the stream handler can tell the cap it holds a
// stream.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// Hold tells the cap that the request in ctx holds a stream, and returns
// the function that says it no longer does. A request on a connection the
// cap does not know (another listener) holds nothing.
func Hold(ctx context.Context) func() {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	// Under TLS the server sees the tls.Conn around ours.
	for c != nil {
		if lc, ok := c.(*limitedConn); ok {
			return lc.holdStream()
		}
		inner, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = inner.NetConn()
	}
	return func() {}
}
