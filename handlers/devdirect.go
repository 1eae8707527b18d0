package handlers

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// devSignInDirectOnly refuses, in dev sign-in mode, any sign-in request
// that came through a proxy: one with forwarding headers, a Host other than
// the loopback listener's, or a browser Origin or Referer off loopback.
// Dev sign-in lets anyone sign in as anyone, so a proxy put in front of a
// loopback listener must not open it to the proxy's public. Outside dev
// mode, or with HEADCOUNT_DEV_LOGIN=1, it passes everything.
func devSignInDirectOnly(direct []string, metrics *Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if direct == nil {
			return next
		}
		return func(c echo.Context) error {
			if why := proxied(c.Request(), direct); why != "" {
				metrics.signinFailures.WithLabelValues(signinProxied).Inc()
				return &problem{status: http.StatusForbidden, title: "Dev sign-in is local only",
					message: "This server signs people in through its built-in development provider, which lets anyone sign in as anyone, so it answers only requests made directly to its loopback address, not through a proxy. Its operator can configure GitHub sign-in, or set HEADCOUNT_DEV_LOGIN=1 to allow this.",
					cause:   &devProxyError{why}}
			}
			return next(c)
		}
	}
}

// devProxyError says, in the log, why a dev sign-in request was refused.
type devProxyError struct{ why string }

func (e *devProxyError) Error() string { return "dev sign-in through a proxy: " + e.why }

// proxied returns why r looks like it came through a proxy, or "":
// direct is every Host a request straight to the listener carries.
func proxied(r *http.Request, direct []string) string {
	// The headers a reverse proxy adds.
	for _, h := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Forwarded-Port", "X-Forwarded-Server", "X-Real-Ip", "Via", "True-Client-Ip", "Cf-Connecting-Ip"} {
		if _, ok := r.Header[h]; ok {
			return "a " + h + " header"
		}
	}
	if !slices.Contains(direct, strings.ToLower(r.Host)) {
		return "Host " + strconv.Quote(r.Host)
	}
	for _, h := range []string{"Origin", "Referer"} {
		if v := r.Header.Get(h); v != "" && !slices.Contains(direct, hostOf(v)) {
			return "an " + h + " of another host"
		}
	}
	return ""
}

// hostOf is the lower-cased host[:port] of an absolute URL, "" if none.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return strings.ToLower(p.Host)
}
