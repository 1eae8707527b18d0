// Package handlers is headcount's HTTP surface: the Echo routes, sign-in,
// sessions and tokens, the pages and the SSE endpoint. It builds no back
// end: the program's start-up (cmd/headcount) builds the hub, the sign-in
// provider, the codecs and the metrics and hands them to NewServer, which
// gives each handler only the parts it uses. routes.go lists every route.
package handlers

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/markbates/goth/providers/github"
	"golang.org/x/oauth2"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/internal/connlimit"
	"github.com/headcount/headcount/stream"
)

// Paths that other parts of the program build URLs from.
const (
	// CallbackPath is the OAuth callback, under the public URL.
	CallbackPath = "/auth/github/callback"
	// DevGitHubPrefix is where the development identity provider is mounted.
	DevGitHubPrefix = "/dev/github"
)

// Deps is everything the HTTP surface uses, built by the program's
// start-up. NewServer hands each handler only the fields it needs.
type Deps struct {
	// Logger receives request logs and failures; nil discards them.
	Logger *slog.Logger
	// PublicURL is headcount's public base URL, for the curl command shown
	// on the page.
	PublicURL string
	// Hub serves the streams and knows the count.
	Hub *stream.Hub
	// Provider is goth's GitHub provider, which signs people in.
	Provider *github.Provider
	// Exchange trades the callback's code for a token with the sign-in's
	// PKCE verifier, which goth cannot send; goth then reads the profile.
	Exchange *oauth2.Config
	// ProfileURL is where Provider reads profiles: the page's avatars may
	// come from its origin.
	ProfileURL string
	// DevProvider serves the development identity provider under
	// DevGitHubPrefix; nil unless in dev sign-in mode.
	DevProvider http.Handler
	// DevDirectHosts, when not nil, is every Host a request made straight
	// to the loopback listener carries: sign-in then refuses any other,
	// and any request that came through a proxy (dev sign-in mode without
	// HEADCOUNT_DEV_LOGIN=1).
	DevDirectHosts []string
	// HTTPS says the public URL is https: every response then carries
	// Strict-Transport-Security.
	HTTPS bool
	// Pages renders every HTML page (NewPages).
	Pages *Pages
	// Sessions, States and Tokens read and write the session cookie, the
	// OAuth state cookie and bearer tokens.
	Sessions *auth.Sessions
	States   *auth.OAuthStates
	Tokens   *auth.Tokens
	// Revocations is this instance's list of signed-out sessions, which
	// every credential is checked against and every stream watches;
	// Revoker is where a sign-out goes (Revocations itself, or a shared
	// store in front of it, auth/redis).
	Revocations *auth.Revocations
	Revoker     auth.Revoker
	// Metrics are the Prometheus metrics (NewMetrics).
	Metrics *Metrics
	// MetricsElsewhere is true when /metrics has an address of its own
	// (HEADCOUNT_METRICS_ADDR): this surface then answers 404 for it.
	MetricsElsewhere bool
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client in request logs (HEADCOUNT_TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
}

// NewServer returns headcount's whole HTTP surface as one handler.
func NewServer(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	addRoutes(e, d)
	return e
}

// Time limits of the HTTP server. The stream clears the write deadline for
// itself and bounds each of its writes instead.
const (
	readHeaderTimeout = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 32 << 10
)

// NewHTTPServer returns the http.Server that serves h, with the time and
// size limits every listener of headcount uses; its own errors go to log
// at warn.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	fresh := &freshConns{conns: make(map[net.Conn]struct{})}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// So a stream can tell a connlimit.Listener that it holds one.
		ConnContext: connlimit.ConnContext,
		ConnState:   fresh.track,
	}
	srv.RegisterOnShutdown(fresh.close)
	return srv
}

// freshConns are a server's connections that have not yet sent a request.
// Shutdown waits for every connection to go idle, and counts one that
// never sent anything as idle only after 5 seconds, the whole of SPEC's
// shutdown: a browser's speculative preconnect, or any client that
// connects and waits, made every stop run out of time and exit 1. Closed
// when Shutdown begins (it has closed the listeners by then), they wait
// for nothing: their client reconnects, to another instance.
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (f *freshConns) track(c net.Conn, state http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if state == http.StateNew {
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
}

func (f *freshConns) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}

// NewMetricsServer returns the http.Server of HEADCOUNT_METRICS_ADDR: the
// metrics at /metrics (HEAD too), 404 for anything else. Its scrapes log
// at debug.
func NewMetricsServer(m *Metrics, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	metrics := m.Handler()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		metrics.ServeHTTP(w, r)
		log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("method", r.Method), slog.String("route", "/metrics"),
			slog.Duration("duration", time.Since(start)), slog.String("client", r.RemoteAddr))
	})
	return NewHTTPServer(mux, log)
}
