package handlers

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// onPublicHost sends a request that reached headcount under another host
// name than the public URL's (http://127.0.0.1:8080 where the public URL
// says localhost) to the same path on the public URL. Sign-in needs it:
// the OAuth state cookie is set on the host the request came to, and the
// provider returns the browser to the public URL's host, where that cookie
// would be missing. Ports do not matter: cookies do not keep them apart.
func onPublicHost(publicURL string) echo.MiddlewareFunc {
	public, err := url.Parse(publicURL)
	if err != nil || public.Host == "" {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if strings.EqualFold(hostname(r.Host), public.Hostname()) {
				return next(c)
			}
			to := strings.TrimSuffix(publicURL, "/") + r.URL.EscapedPath()
			if r.URL.RawQuery != "" {
				to += "?" + r.URL.RawQuery
			}
			c.Response().Header().Set("Cache-Control", "no-store")
			return c.Redirect(http.StatusFound, to)
		}
	}
}

// hostname is a Host header's name without its port.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.Trim(host, "[]")
}
