package handlers

import (
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/markbates/goth/providers/github"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/devgithub"
	"github.com/headcount/headcount/stream"
)

// app holds what the handlers share; each handler is built by a method
// that uses only the parts it needs.
type app struct {
	log     *slog.Logger
	baseURL string
	// profileURL is where the provider serves profiles; avatars of a
	// plain-http GitHub Enterprise come from its origin.
	profileURL string
	devMode    bool
	hub        *stream.Hub
	provider   *github.Provider
	dev        *devgithub.Provider // nil unless in dev sign-in mode
	sessions   *auth.Sessions
	states     *auth.OAuthStates
	tokens     *auth.Tokens
	pages      *pages
	assets     *staticAssets
	metrics    *metrics
	registry   *prometheus.Registry
}

// routes is headcount's whole HTTP surface.
func (a *app) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = a.handleError
	// No Gzip, Timeout, ContextTimeout or BodyDump anywhere: each would
	// buffer or cut the event stream.
	e.Use(middleware.Recover(), a.logRequests, securityHeaders(contentSecurityPolicy(a.profileURL)))

	noCrossSite := echo.WrapMiddleware(http.NewCrossOriginProtection().Handler)
	smallBody := middleware.BodyLimit("16K")

	e.GET("/", a.home)
	e.GET("/static/*", a.assets.serve())
	e.GET("/auth/github", a.beginSignIn)
	e.GET("/auth/github/callback", a.finishSignIn)
	e.POST("/logout", a.logout, noCrossSite, smallBody)

	e.GET("/events", a.events, a.authenticate(anyCredential))
	e.POST("/api/token", a.issueToken, noCrossSite, smallBody, a.authenticate(sessionOnly))
	e.GET("/api/count", a.count, a.authenticate(anyCredential))

	e.GET("/healthz", healthz)
	e.GET("/readyz", a.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{})))

	if a.dev != nil {
		e.Any(devPrefix+"/*", echo.WrapHandler(a.dev))
	}
	return e
}
