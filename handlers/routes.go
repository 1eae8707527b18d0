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
	e.Use(middleware.Recover(), logRequests(d.Logger), securityHeaders(contentSecurityPolicy(d.ProfileURL), d.HTTPS))

	noCrossSite := echo.WrapMiddleware(http.NewCrossOriginProtection().Handler)
	smallBody := middleware.BodyLimit("16K")
	signedIn := newAuthenticator(d.Sessions, d.Tokens, d.Revocations, d.Metrics)
	direct := devSignInDirectOnly(d.DevDirectHosts, d.Metrics)

	e.GET("/", handleHome(d.Pages, d.Sessions, d.Tokens, d.Revocations, d.Hub, d.PublicURL))
	e.GET("/static/*", handleStatic(d.Pages.assets))
	e.GET("/auth/github", handleBeginSignIn(d.Provider, d.States), direct)
	e.GET(CallbackPath, handleFinishSignIn(d.Provider, d.Exchange, d.States, d.Sessions, d.Metrics, d.Logger), direct)
	e.POST("/logout", handleLogout(d.Sessions, d.Revoker, d.Logger), noCrossSite, smallBody)

	e.GET("/events", handleEvents(d.Hub, d.Revocations), signedIn.require(anyCredential))
	e.POST("/api/token", handleIssueToken(d.Tokens), noCrossSite, smallBody, signedIn.require(sessionOnly))
	e.GET("/api/count", handleCount(d.Hub), signedIn.require(anyCredential))
	e.GET("/api/presence", handlePresence(d.Hub), signedIn.require(anyCredential))

	e.GET("/healthz", handleHealthz())
	e.GET("/readyz", handleReadyz(d.Hub))
	e.GET("/metrics", echo.WrapHandler(d.Metrics.Handler()))

	if d.DevProvider != nil {
		e.Any(DevGitHubPrefix+"/*", echo.WrapHandler(d.DevProvider), direct)
	}
}
