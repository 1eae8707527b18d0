// Package handlers is headcount's HTTP surface: the Echo routes, sign-in,
// sessions and tokens, the pages and the SSE endpoint. routes.go lists
// every route; Server ties them to a listener.
package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/markbates/goth/providers/github"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/devgithub"
	"github.com/headcount/headcount/stream"
	"github.com/headcount/headcount/stream/redis"
)

// Time limits of the HTTP server. The stream clears the write deadline for
// itself and bounds each of its writes instead.
const (
	readHeaderTimeout = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	providerTimeout   = 10 * time.Second
	// redisConnectTimeout bounds the start when Redis does not answer.
	redisConnectTimeout = 5 * time.Second
	maxHeaderBytes      = 32 << 10
)

// devPrefix is where the development identity provider is mounted.
const devPrefix = "/dev/github"

// Server is headcount's HTTP server: configure the exported fields, then
// Open it; Close ends every stream and stops it.
type Server struct {
	// Config is the checked configuration (config.Load).
	Config config.Config
	// Logger receives request and start-up logs; nil discards them.
	Logger *slog.Logger
	// Counter is where the count lives; nil keeps it in this process.
	Counter stream.Counter

	ln      net.Listener
	srv     *http.Server
	hub     *stream.Hub
	baseURL string
	served  chan error
	// shared is the Redis count this server opened itself, closed with it.
	shared *redis.Counter
	// providerTransport carries sign-in's calls to the provider.
	providerTransport *http.Transport

	closeOnce sync.Once
	closeErr  error
}

// Open checks the configuration, listens on Config.Addr and starts serving.
func (s *Server) Open() error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if len(s.Config.SessionSecret) < config.MinSecretLen {
		return fmt.Errorf("handlers: session secret shorter than %d bytes", config.MinSecretLen)
	}
	ln, err := net.Listen("tcp", s.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Config.Addr, err)
	}
	s.ln = ln
	port := ln.Addr().(*net.TCPAddr).Port
	s.baseURL = s.Config.BaseURL
	if s.baseURL == "" {
		s.baseURL = fmt.Sprintf("http://localhost:%d", port)
	}

	if s.Counter == nil && s.Config.RedisURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), redisConnectTimeout)
		s.shared, err = redis.New(ctx, s.Config.RedisURL, redis.Options{Logger: s.Logger})
		cancel()
		if err != nil {
			ln.Close()
			return fmt.Errorf("HEADCOUNT_REDIS_URL: %w", err)
		}
		s.Counter = s.shared
	}
	e, err := s.build()
	if err != nil {
		ln.Close()
		if s.hub != nil {
			s.hub.Close(context.Background())
		}
		s.closeShared()
		return err
	}
	s.srv = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(detectDeadPeers(ln, s.deadPeerTimeout())) }()
	return nil
}

// build wires every part and returns the router.
func (s *Server) build() (*echo.Echo, error) {
	cfg := s.Config
	secure := strings.HasPrefix(s.baseURL, "https://")
	maxStreams := cfg.MaxStreams
	if maxStreams < 0 {
		maxStreams = 0
	}
	s.hub = stream.NewHub(stream.Config{
		Counter:           s.Counter,
		Heartbeat:         cfg.Heartbeat,
		MaxStreams:        maxStreams,
		MaxStreamsPerUser: cfg.MaxStreamsPerUser,
		Logger:            s.Logger,
	})

	assets, err := newStaticAssets()
	if err != nil {
		return nil, err
	}
	pages, err := newPages(cfg.DevMode(), assets)
	if err != nil {
		return nil, err
	}
	callback := s.baseURL + "/auth/github/callback"
	var dev *devgithub.Provider
	key, secret := cfg.GitHubKey, cfg.GitHubSecret
	authURL, tokenURL, profileURL, emailURL := cfg.GitHubAuthURL, cfg.GitHubTokenURL, cfg.GitHubProfileURL, cfg.GitHubEmailURL
	if cfg.DevMode() {
		key, secret = "headcount-dev", randomHex(16)
		dev, err = devgithub.New(devgithub.Config{
			BaseURL:      s.baseURL,
			Prefix:       devPrefix,
			ClientID:     key,
			ClientSecret: secret,
			CallbackURL:  callback,
			Key:          cfg.SessionSecret,
			Render:       pages.renderDevAuthorize,
		})
		if err != nil {
			return nil, fmt.Errorf("dev sign-in: %w", err)
		}
		// The provider reaches the dev endpoints over loopback, whatever
		// the public URL says.
		origin := "http://" + loopbackAddr(s.ln.Addr().(*net.TCPAddr))
		authURL, tokenURL, profileURL, emailURL = dev.AuthURL(), dev.TokenURL(origin), dev.ProfileURL(origin), dev.EmailURL(origin)
	}
	provider := github.NewCustomisedURL(key, secret, callback, authURL, tokenURL, profileURL, emailURL, "read:user", "user:email")
	// Its own transport, not http.DefaultTransport's shared pool, so Close
	// can drop the connections it keeps to GitHub (or, in dev mode, to us).
	s.providerTransport = http.DefaultTransport.(*http.Transport).Clone()
	provider.HTTPClient = &http.Client{Timeout: providerTimeout, Transport: s.providerTransport}

	reg := prometheus.NewRegistry()
	app := &app{
		log:        s.Logger,
		baseURL:    s.baseURL,
		profileURL: profileURL,
		devMode:    cfg.DevMode(),
		hub:        s.hub,
		provider:   provider,
		dev:        dev,
		sessions:   auth.NewSessions(cfg.SessionSecret, secure),
		states:     auth.NewOAuthStates(cfg.SessionSecret, secure),
		tokens:     auth.NewTokens(cfg.SessionSecret, cfg.TokenTTL),
		pages:      pages,
		assets:     assets,
		metrics:    newMetrics(reg, s.hub),
		registry:   reg,
	}
	return app.routes(), nil
}

// deadPeerTimeout is how long a connection's sent data may go
// unacknowledged before the kernel drops it: a heartbeat plus the stream's
// write timeout, so a vanished client is counted out within two heartbeats
// and ten seconds.
func (s *Server) deadPeerTimeout() time.Duration {
	return s.Config.Heartbeat + stream.DefaultWriteTimeout
}

// URL is the server's public base URL, without a trailing slash.
func (s *Server) URL() string { return s.baseURL }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Hub is the server's stream hub, for tests and metrics.
func (s *Server) Hub() *stream.Hub { return s.hub }

// Close stops accepting connections, ends every stream so clients reconnect
// elsewhere, and waits for requests in flight until ctx is done. Later
// calls return the first call's result.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Server) close(ctx context.Context) error {
	// Shutdown closes the listeners at once but then waits for every
	// connection to go idle, which a stream never does: end the streams
	// meanwhile.
	shut := make(chan error, 1)
	go func() { shut <- s.srv.Shutdown(ctx) }()
	hubErr := s.hub.Close(ctx)
	// After the hub, so the last Store has happened; Close removes this
	// instance's share of the count at once. A Redis that hangs must not
	// hold the stop past ctx: the others then drop this instance's share
	// when it expires.
	shared := make(chan error, 1)
	go func() { shared <- s.closeShared() }()
	var redisErr error
	select {
	case redisErr = <-shared:
	case <-ctx.Done():
		redisErr = fmt.Errorf("closing the shared count: %w", ctx.Err())
	}
	err := <-shut
	s.providerTransport.CloseIdleConnections()
	if serveErr := <-s.served; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return errors.Join(hubErr, redisErr, err)
}

func (s *Server) closeShared() error {
	if s.shared == nil {
		return nil
	}
	return s.shared.Close()
}

// loopbackAddr is how the server reaches itself: its own address, or the
// loopback of the same family when it listens on every interface.
func loopbackAddr(a *net.TCPAddr) string {
	ip := a.IP
	switch {
	case ip.IsUnspecified() && ip.To4() == nil:
		ip = net.IPv6loopback
	case ip.IsUnspecified():
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
