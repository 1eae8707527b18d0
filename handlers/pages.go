package handlers

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/devgithub"
	"github.com/headcount/headcount/templates"
)

// Page is the data of every page; templates/embed.go documents the
// contract.
type Page struct {
	Title        string
	DevMode      bool
	User         *auth.User
	Count        int
	Token        string
	TokenExpires string
	CurlCommand  string
	Error        *ErrorInfo
	Dev          *devgithub.AuthorizePage
}

// ErrorInfo is what the error page says.
type ErrorInfo struct {
	Status         int
	Title, Message string
}

// pages holds the parsed templates, one set per page.
type pages struct {
	devMode bool
	sets    map[string]*template.Template
}

func newPages(devMode bool, assets *staticAssets) (*pages, error) {
	funcs := template.FuncMap{"static": assets.url}
	p := &pages{devMode: devMode, sets: map[string]*template.Template{}}
	for _, name := range []string{"home.html", "error.html", "dev-authorize.html"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templates.FS, "layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// render writes page name with status. It renders into a buffer first so a
// template error becomes a clean 500 rather than half a page.
func (p *pages) render(w http.ResponseWriter, status int, name string, data Page) error {
	data.DevMode = p.devMode
	var buf bytes.Buffer
	if err := p.sets[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// renderDevAuthorize renders the dev identity provider's sign-in form.
func (p *pages) renderDevAuthorize(w io.Writer, page devgithub.AuthorizePage) error {
	data := Page{Title: "Development sign-in", DevMode: p.devMode, Dev: &page}
	return p.sets["dev-authorize.html"].ExecuteTemplate(w, "layout", data)
}

// home is the page: signed out, a sign-in button; signed in, the live count
// and a curl command with a fresh token.
func (a *app) home(c echo.Context) error {
	data := Page{Count: a.hub.Count()}
	u, err := a.sessions.Get(c.Request())
	switch {
	case err == nil:
		token, exp, err := a.tokens.Issue(u)
		if err != nil {
			return err
		}
		data.User = &u
		data.Token = token
		data.TokenExpires = exp.UTC().Format(time.RFC3339)
		data.CurlCommand = fmt.Sprintf("curl -N -H \"Authorization: Bearer %s\" %s/events", token, a.baseURL)
	case !errors.Is(err, auth.ErrNoCredentials):
		// A forged, tampered or expired cookie: show the signed-out page
		// and drop the cookie.
		a.sessions.Clear(c.Response())
	}
	return a.pages.render(c.Response(), http.StatusOK, "home.html", data)
}

// problem is an error with the page a person should see.
type problem struct {
	status         int
	title, message string
	cause          error // logged, never shown
}

func (p *problem) Error() string { return fmt.Sprintf("%d %s: %s", p.status, p.title, p.message) }

// handleError turns every error into a clear page (or JSON under /api, or
// text for the stream) and never leaks internals.
func (a *app) handleError(err error, c echo.Context) {
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
		a.log.Error("request failed", "route", c.Path(), "status", p.status, "err", err, "cause", p.cause)
	} else if p.cause != nil {
		a.log.Info("request refused", "route", c.Path(), "status", p.status, "err", p.cause)
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
		err = a.pages.render(c.Response(), p.status, "error.html", Page{
			Title: p.title,
			Error: &ErrorInfo{Status: p.status, Title: p.title, Message: p.message},
		})
	}
	if err != nil {
		a.log.Error("write error response", "err", err)
	}
}
