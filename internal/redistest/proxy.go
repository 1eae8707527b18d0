package redistest

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP relay to Redis that a test can cut, freeze and mend, to
// see what an instance does when the network between it and Redis fails.
type Proxy struct {
	ln     net.Listener
	target string
	relays sync.WaitGroup

	mu     sync.Mutex
	thawed *sync.Cond // broadcast when frozen, cut or closed change
	cut    bool
	frozen bool
	closed bool
	conns  map[net.Conn]struct{}
}

// NewProxy starts a relay on a free loopback port to target (host:port).
// Cleanup stops it and waits for its goroutines.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.thawed = sync.NewCond(&p.mu)
	p.relays.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is where the proxy listens.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.relays.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		if p.cut || p.closed {
			// A cut network: the connection opens and dies at once.
			p.mu.Unlock()
			down.Close()
			up.Close()
			continue
		}
		p.conns[down], p.conns[up] = struct{}{}, struct{}{}
		p.relays.Add(2)
		p.mu.Unlock()
		go p.relay(down, up)
		go p.relay(up, down)
	}
}

// relay copies src to dst; while the proxy is frozen, what it read waits.
func (p *Proxy) relay(dst, src net.Conn) {
	defer p.relays.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.frozen && !p.cut && !p.closed {
				p.thawed.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// SetCut cuts (true) or mends (false) the network: cutting resets every
// relayed connection and refuses new ones until mended.
func (p *Proxy) SetCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	p.thawed.Broadcast()
	if cut {
		p.dropLocked()
	}
}

// SetFrozen stops (true) or resumes (false) relaying without closing
// anything: to Redis the connections stay open, as when a process is
// frozen or the network silently drops everything.
func (p *Proxy) SetFrozen(frozen bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = frozen
	p.thawed.Broadcast()
}

func (p *Proxy) dropLocked() {
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Close closes the port for good (so a dial is refused) and waits for the
// relays to end.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.thawed.Broadcast()
		p.ln.Close()
		p.dropLocked()
	}
	p.mu.Unlock()
	p.relays.Wait()
}
