package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
)

// contentSecurityPolicy allows only the service's own scripts and styles.
// Avatars may come from any https host (github.com serves them from its
// own CDN) and, for a GitHub Enterprise reached over plain http, from the
// profile URL's origin.
func contentSecurityPolicy(profileURL string) string {
	img := "'self' https: data:"
	if u, err := url.Parse(profileURL); err == nil && u.Scheme == "http" && u.Host != "" {
		img += " http://" + u.Host
	}
	return "default-src 'self'; img-src " + img + "; object-src 'none'; base-uri 'none'; form-action 'self' http: https:; frame-ancestors 'none'"
}

// hsts is the Strict-Transport-Security of an https deployment: a year,
// without includeSubDomains, which would bind sibling hosts that are not
// headcount's to decide.
const hsts = "max-age=31536000"

// securityHeaders sets the headers every response carries; https (an
// https base URL) adds Strict-Transport-Security.
func securityHeaders(csp string, https bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			if https {
				h.Set("Strict-Transport-Security", hsts)
			}
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "same-origin")
			return next(c)
		}
	}
}

// isQuiet reports whether route is a probe or a scrape, which come every
// few seconds: their request lines are at debug, so they do not drown the
// others.
func isQuiet(route string) bool {
	switch route {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}

// logRequests writes one line per request at info (debug for probes and
// scrapes): method, route, status, duration and the client's address. A
// stream's line comes when the stream ends and says how long it was held
// (stream_duration, from its headers to its end). It never logs headers,
// so cookies and tokens stay out of the logs.
func logRequests(log *slog.Logger, trusted []netip.Prefix) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			var headersAt time.Time
			c.Response().Before(func() { headersAt = time.Now() })
			r := c.Request()
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			level := slog.LevelInfo
			if isQuiet(route) {
				level = slog.LevelDebug
			}
			// Only values go into lineOf, never c: Echo reuses c, and a
			// stream's line may be written after the handler has returned.
			method, client, proto := r.Method, clientAddr(r, trusted), r.Proto
			lineOf := func(status int, end time.Time) []slog.Attr {
				return []slog.Attr{
					slog.String("method", method),
					slog.String("route", route),
					slog.Int("status", status),
					slog.Duration("duration", end.Sub(start)),
					slog.String("client", client),
					slog.String("proto", proto),
				}
			}
			isStream := route == "/events" && method == http.MethodGet
			var stream *streamLine
			if isStream {
				// If the hub takes the connection over, the stream's end
				// writes the line: the hub wrote the 200 itself.
				stream = &streamLine{write: func(head, end time.Time) {
					attrs := append(lineOf(http.StatusOK, end), slog.Duration("stream_duration", end.Sub(head)))
					log.LogAttrs(context.Background(), level, "request", attrs...)
				}}
				c.Set(streamLineKey, stream)
			}
			err := next(c)
			if err != nil {
				// Let the error handler write the response now, so the status
				// logged is the one the client got.
				c.Error(err)
			}
			if stream.takenOver() {
				return nil // written when the stream ends
			}
			status := c.Response().Status
			attrs := lineOf(status, time.Now())
			if isStream && status == http.StatusOK && !headersAt.IsZero() {
				attrs = append(attrs, slog.Duration("stream_duration", time.Since(headersAt)))
			}
			log.LogAttrs(r.Context(), level, "request", attrs...)
			return nil
		}
	}
}
