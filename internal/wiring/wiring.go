// Package wiring turns the loaded configuration into the hub's and the
// HTTP handler's settings. cmd/headcount's run and internal/testserver
// both build headcount from it, so the in-process server of the tests
// cannot drift from the binary in what it passes on.
package wiring

import (
	"log/slog"

	"github.com/headcount/headcount/auth"
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
