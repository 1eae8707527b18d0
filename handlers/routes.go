package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// addRoutes is headcount's whole HTTP surface: every route, the handler
// that serves it and what that handler is given.
func addRoutes(e *echo.Echo, d Deps) {
	e.HTTPErrorHandler = handleError(d.Logger, d.Pages)
	// No Gzip, Timeout, ContextTimeout or BodyDump anywhere: each would
	// buffer or cut the event stream.
	e.Use(middleware.Recover(), logRequests(d.Logger, d.TrustedProxies), securityHeaders(contentSecurityPolicy(d.ProfileURL), d.HTTPS))
	// Every GET answers HEAD too, with no body (load balancers probe with
	// HEAD); net/http drops what a handler writes to a HEAD response.
	get := func(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
		e.GET(path, h, m...)
		e.HEAD(path, h, m...)
	}

	noCrossSite := echo.WrapMiddleware(http.NewCrossOriginProtection().Handler)
	smallBody := middleware.BodyLimit("16K")
	signedIn := newAuthenticator(d.Sessions, d.Tokens, d.Revocations, d.Metrics)
	direct := devSignInDirectOnly(d.DevDirectHosts, d.Metrics)

	get("/", handleHome(d.Pages, signedIn, d.Tokens, d.Hub, d.PublicURL))
	get("/static/*", handleStatic(d.Pages.assets))
	get("/auth/github", handleBeginSignIn(d.Provider, d.States), direct, onPublicHost(d.PublicURL))
	get(CallbackPath, handleFinishSignIn(d.Provider, d.Exchange, d.States, d.Sessions, d.Metrics, d.Logger), direct)
	e.POST("/logout", handleLogout(signedIn, d.Revoker, d.Logger), noCrossSite, smallBody)

	get("/events", handleEvents(d.Hub, d.Revocations), signedIn.require(anyCredential))
	e.POST("/api/token", handleIssueToken(d.Tokens), noCrossSite, smallBody, signedIn.require(sessionOnly))
	get("/api/count", handleCount(d.Hub), signedIn.require(anyCredential))
	get("/api/presence", handlePresence(d.Hub), signedIn.require(anyCredential))

	get("/healthz", handleHealthz())
	get("/readyz", handleReadyz(d.Hub))
	if !d.MetricsElsewhere {
		get("/metrics", echo.WrapHandler(d.Metrics.Handler()))
	}

	if d.DevProvider != nil {
		e.Any(DevGitHubPrefix+"/*", echo.WrapHandler(d.DevProvider), direct)
	}
}
