// Package testserver runs headcount in-process for the tests of other
// packages (handlers, e2e): the same parts, built from the same
// config.Load, in the same order as cmd/headcount's run, which a test
// cannot import. It differs from run in these ways only: the count store
// is the test's (memory by default), the log goes where the test says, the
// test gets the hub to watch, and it neither reloads the TLS certificate
// nor serves HEADCOUNT_METRICS_ADDR (cmd/headcount's tests cover those).
package testserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/handlers"
	"github.com/headcount/headcount/identity"
	"github.com/headcount/headcount/internal/certwatch"
	"github.com/headcount/headcount/internal/connlimit"
	"github.com/headcount/headcount/internal/deadpeer"
	"github.com/headcount/headcount/internal/wiring"
	"github.com/headcount/headcount/stream"
)

// Options are the parts a test chooses; the zero value is usable.
type Options struct {
	// Counter is where the count lives; nil keeps it in memory. A Counter
	// with a Close() error method is closed by Server.Close, after the hub.
	Counter stream.Counter
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// MaxOtherConns, if not 0, replaces the configuration's cap on
	// connections that hold no stream.
	MaxOtherConns int
}

// Server is one headcount serving on a loopback port.
type Server struct {
	cfg       config.Config
	ln        net.Listener
	publicURL string
	hub       *stream.Hub
	id        *identity.Identity
	srv       *http.Server
	served    chan error
	counter   stream.Counter
	conns     *connlimit.Listener
	// closeRevocations stops following sign-outs in Redis.
	closeRevocations func(context.Context) error

	closeOnce sync.Once
	closeErr  error
}

// Start loads the configuration from vars (HEADCOUNT_ADDR defaults to
// 127.0.0.1:0), starts serving and stops the server when the test ends.
// Any failure fails the test.
func Start(t testing.TB, vars map[string]string, opts Options) *Server {
	t.Helper()
	s, err := Open(vars, opts)
	if err != nil {
		t.Fatalf("starting headcount: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("stopping headcount: %v", err)
		}
	})
	return s
}

// Open is Start for a test that expects the start to fail, or stops the
// server itself: it returns the error, and the caller must Close.
func Open(vars map[string]string, opts Options) (*Server, error) {
	cfg, err := config.Load(func(k string) string {
		if v, ok := vars[k]; ok || k != "HEADCOUNT_ADDR" {
			return v
		}
		return "127.0.0.1:0"
	})
	if err != nil {
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		// The main address would answer 404 for /metrics, and nothing
		// would serve it elsewhere: the binary's tests cover it.
		return nil, errors.New("testserver: HEADCOUNT_METRICS_ADDR is not served here")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, counter: opts.Counter, served: make(chan error, 1)}
	if s.counter == nil {
		s.counter = stream.Memory{}
	}
	var certs *certwatch.Watcher
	if cfg.TLS() {
		if certs, err = certwatch.New(cfg.TLSCert, cfg.TLSKey, log); err != nil {
			return nil, err
		}
	}
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	s.publicURL = cfg.PublicURL(s.ln.Addr())
	s.hub = stream.NewHub(wiring.HubConfig(cfg, s.counter, log))
	pages, err := handlers.NewPages(cfg.DevMode())
	if err == nil {
		s.id, err = identity.New(cfg, wiring.Mount(s.publicURL, s.ln.Addr(), pages, certwatch.Current(certs)))
	}
	var revocations *auth.Revocations
	var revoker auth.Revoker
	if err == nil {
		revocations, revoker, s.closeRevocations, err = wiring.OpenRevocations(cfg, log)
	}
	if err != nil {
		s.ln.Close()
		if s.id != nil {
			s.id.Close()
		}
		return nil, errors.Join(err, s.hub.Close(context.Background()))
	}
	metrics := handlers.NewMetrics(s.hub)
	s.srv = handlers.NewHTTPServer(handlers.NewServer(wiring.Deps(cfg, wiring.Parts{
		Logger:      log,
		PublicURL:   s.publicURL,
		Hub:         s.hub,
		Identity:    s.id,
		Pages:       pages,
		Metrics:     metrics,
		Revocations: revocations,
		Revoker:     revoker,
	})), log)
	maxOther := cfg.MaxOtherConns
	if opts.MaxOtherConns != 0 {
		maxOther = opts.MaxOtherConns
	}
	s.conns = connlimit.Listen(deadpeer.Listen(s.ln, cfg.DeadPeerTimeout), maxOther)
	metrics.WatchConnections(s.conns)
	if certs != nil {
		s.srv.TLSConfig = certwatch.ServerConfig(certs)
		go func() { s.served <- s.srv.ServeTLS(s.conns, "", "") }()
	} else {
		go func() { s.served <- s.srv.Serve(s.conns) }()
	}
	return s, nil
}

// OtherConns is how many open connections hold no stream: what the cap
// on them counts.
func (s *Server) OtherConns() int64 { return s.conns.Other() }

// URL is the server's public base URL, without a trailing slash.
func (s *Server) URL() string { return s.publicURL }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Hub is the server's stream hub, for tests to watch.
func (s *Server) Hub() *stream.Hub { return s.hub }

// Config is the configuration the server runs with, every default resolved.
func (s *Server) Config() config.Config { return s.cfg }

// Close stops the server as run does: the HTTP server and the hub
// together, then the count store. Later calls return the first's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		shut := make(chan error, 1)
		go func() { shut <- s.srv.Shutdown(ctx) }()
		err := s.hub.Close(ctx)
		if c, ok := s.counter.(interface{ Close() error }); ok {
			err = errors.Join(err, c.Close())
		}
		err = errors.Join(err, <-shut)
		if serveErr := <-s.served; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
		s.id.Close()
		s.closeErr = errors.Join(err, s.closeRevocations(ctx))
	})
	return s.closeErr
}
