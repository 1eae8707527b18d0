package main

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// dialTimeout bounds one TCP connect.
const dialTimeout = 10 * time.Second

// sourceDialer dials every connection from the next of its source
// addresses in turn. Each source address has its own ephemeral port range,
// so four of them hold four times as many connections to one server port.
type sourceDialer struct {
	sources []net.IP
	next    atomic.Uint64
}

// DialContext connects to addr from the next source address.
func (d *sourceDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ip := d.sources[(d.next.Add(1)-1)%uint64(len(d.sources))]
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: dialTimeout}
	return nd.DialContext(ctx, network, addr)
}

// newTransport is the HTTP/1.1 transport every request of a run uses: no
// proxy (load stays on loopback whatever the environment says), no
// compression, small buffers (thousands of streams each hold a pair), and
// a new connection for every stream that needs one.
func newTransport(sources []net.IP) *http.Transport {
	d := &sourceDialer{sources: sources}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		DisableCompression:    true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ReadBufferSize:        1 << 10,
		WriteBufferSize:       1 << 10,
	}
}
