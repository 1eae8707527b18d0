// Package wiring turns the loaded configuration into the hub's and the
// HTTP handler's settings. cmd/headcount's run and internal/testserver
// both build headcount from it, so the in-process server of the tests
// cannot drift from the binary in what it passes on.
package wiring

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/headcount/headcount/auth"
	authredis "github.com/headcount/headcount/auth/redis"
	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/handlers"
	"github.com/headcount/headcount/identity"
	"github.com/headcount/headcount/stream"
)

// HubConfig is the hub's configuration for cfg, counting in counter.
func HubConfig(cfg config.Config, counter stream.Counter, log *slog.Logger) stream.Config {
	return stream.Config{
		Counter:           counter,
		Heartbeat:         cfg.Heartbeat,
		MaxStreams:        cfg.MaxStreams,
		MaxStreamsPerUser: cfg.MaxStreamsPerUser,
		CountOnly:         cfg.PresenceCountOnly,
		Logger:            log,
	}
}

// Parts are what the handler serves with that the configuration alone
// does not make: they are built, and closed, by the caller.
type Parts struct {
	Logger    *slog.Logger
	PublicURL string
	Hub       *stream.Hub
	Identity  *identity.Identity
	Pages     *handlers.Pages
	Metrics   *handlers.Metrics
	// Revocations is this instance's list; Revoker is where a sign-out
	// goes (Revocations itself, or a store shared through Redis).
	Revocations *auth.Revocations
	Revoker     auth.Revoker
}

// Deps is the handler's dependencies for cfg and p; the cookie and token
// codecs are made here, keyed by cfg's session secret.
func Deps(cfg config.Config, p Parts) handlers.Deps {
	return handlers.Deps{
		Logger:           p.Logger,
		PublicURL:        p.PublicURL,
		Hub:              p.Hub,
		Provider:         p.Identity.Provider,
		Exchange:         p.Identity.Exchange,
		ProfileURL:       p.Identity.ProfileURL,
		DevProvider:      p.Identity.Dev,
		DevDirectHosts:   p.Identity.DirectHosts,
		HTTPS:            cfg.Secure(),
		Pages:            p.Pages,
		Sessions:         auth.NewSessions(cfg.SessionSecret, cfg.Secure()),
		States:           auth.NewOAuthStates(cfg.SessionSecret, cfg.Secure()),
		Tokens:           auth.NewTokens(cfg.SessionSecret, cfg.TokenTTL),
		Revocations:      p.Revocations,
		Revoker:          p.Revoker,
		Metrics:          p.Metrics,
		MetricsElsewhere: cfg.MetricsAddr != "", // /metrics has an address of its own
		TrustedProxies:   cfg.TrustedProxies,
	}
}

// RedisConnectTimeout bounds the start when Redis does not answer.
const RedisConnectTimeout = 5 * time.Second

// Mount is where the identity part serves, for a server on ln at
// publicURL with pages; ownCert is the certificate it serves itself (nil
// for plain HTTP).
func Mount(publicURL string, ln net.Addr, pages *handlers.Pages, ownCert func() *tls.Certificate) identity.Mount {
	return identity.Mount{
		PublicURL:          publicURL,
		CallbackURL:        publicURL + handlers.CallbackPath,
		Listening:          ln,
		DevPrefix:          handlers.DevGitHubPrefix,
		RenderDevAuthorize: pages.RenderDevAuthorize,
		OwnCertificate:     ownCert,
	}
}

// OpenRevocations returns this instance's list of signed-out sessions,
// where a sign-out goes (the list itself, or with HEADCOUNT_REDIS_URL a
// store shared through Redis that feeds it) and how to close that.
func OpenRevocations(cfg config.Config, log *slog.Logger) (*auth.Revocations, auth.Revoker, func(context.Context) error, error) {
	local := auth.NewRevocations()
	if cfg.RedisURL == "" {
		return local, local, func(context.Context) error { return nil }, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), RedisConnectTimeout)
	defer cancel()
	shared, err := authredis.New(ctx, cfg.RedisURL, local, authredis.Options{Secret: cfg.SessionSecret, Logger: log})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("HEADCOUNT_REDIS_URL: %w", err)
	}
	return local, shared, shared.Close, nil
}
