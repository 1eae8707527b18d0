package handlers

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"net/http"

	"github.com/headcount/headcount/auth"
	"github.com/headcount/headcount/devgithub"
	"github.com/headcount/headcount/templates"
)

// Page is the data of every page; the package templates documents how
// the pages are parsed and executed.
type Page struct {
	// Title is the page title; " · headcount" is added to it.
	Title string
	// DevMode is dev sign-in mode: every page shows #dev-banner.
	DevMode bool
	// User is the signed-in user, nil when signed out.
	User *auth.User
	// Count is the number of streams when the page was rendered.
	Count int
	// People is the number of people online then.
	People int
	// ShowPeople says who is online may be shown (HEADCOUNT_PRESENCE=names).
	ShowPeople bool
	// Online is the first dozen people online.
	Online []OnlinePerson
	// More is how many more are online than Online lists.
	More int
	// Token is a fresh bearer token (signed in only).
	Token string
	// TokenExpires is Token's expiry, RFC 3339.
	TokenExpires string
	// CurlCommand is the ready-to-copy curl -N command.
	CurlCommand string
	// Error is what error.html shows.
	Error *ErrorInfo
	// Dev is what dev-authorize.html shows.
	Dev *devgithub.AuthorizePage
}

// OnlinePerson is one avatar of the home page's list of who is online.
type OnlinePerson struct {
	Login, Name, AvatarURL string
}

// ErrorInfo is what the error page says.
type ErrorInfo struct {
	Status         int
	Title, Message string
}

// Pages renders headcount's HTML pages from the embedded templates and
// serves the static files they link to.
type Pages struct {
	devMode bool
	assets  *staticAssets
	sets    map[string]*template.Template
}

// NewPages parses every page; in dev sign-in mode every page shows the
// dev banner.
func NewPages(devMode bool) (*Pages, error) {
	assets, err := newStaticAssets()
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{"static": assets.url}
	p := &Pages{devMode: devMode, assets: assets, sets: map[string]*template.Template{}}
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
func (p *Pages) render(w http.ResponseWriter, status int, name string, data Page) error {
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

// RenderDevAuthorize renders the dev identity provider's sign-in form.
func (p *Pages) RenderDevAuthorize(w io.Writer, page devgithub.AuthorizePage) error {
	data := Page{Title: "Development sign-in", DevMode: p.devMode, Dev: &page}
	return p.sets["dev-authorize.html"].ExecuteTemplate(w, "layout", data)
}
