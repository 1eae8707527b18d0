package handlers

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
)

// problem is an error with the page a person should see.
type problem struct {
	status         int
	title, message string
	cause          error // logged, never shown
}

func (p *problem) Error() string { return fmt.Sprintf("%d %s: %s", p.status, p.title, p.message) }

// handleError turns every error into a clear page (or JSON under /api, or
// text for the stream) and never leaks internals.
func handleError(log *slog.Logger, pages *Pages) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p := &problem{status: http.StatusInternalServerError, title: "Something went wrong", message: "The server could not answer. Try again in a moment."}
		var pr *problem
		var he *echo.HTTPError
		switch {
		case errors.As(err, &pr):
			p = pr
		case errors.As(err, &he):
			p.status = he.Code
			p.title = http.StatusText(he.Code)
			p.message = fmt.Sprint(he.Message)
			if he.Code == http.StatusNotFound {
				p.title, p.message = "Page not found", "There is nothing at this address."
			}
		}
		if p.status >= 500 {
			log.Error("request failed", "route", c.Path(), "status", p.status, "err", err, "cause", p.cause)
		} else if p.cause != nil {
			log.Info("request refused", "route", c.Path(), "status", p.status, "err", p.cause)
		}
		req := c.Request()
		switch {
		case req.Method == http.MethodHead:
			err = c.NoContent(p.status)
		case isAPI(req):
			err = c.JSON(p.status, map[string]string{"error": p.message})
		case req.URL.Path == "/events" || req.URL.Path == "/metrics" || req.URL.Path == "/healthz" || req.URL.Path == "/readyz":
			err = c.String(p.status, p.message+"\n")
		default:
			err = pages.render(c.Response(), p.status, "error.html", Page{
				Title: p.title,
				Error: &ErrorInfo{Status: p.status, Title: p.title, Message: p.message},
			})
		}
		if err != nil {
			log.Error("write error response", "err", err)
		}
	}
}
