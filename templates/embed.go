// Package templates holds headcount's HTML pages, embedded into the binary so
// the service needs no files beside it at run time.
//
// # Contract with the handlers
//
// Every page is parsed as "layout.html" plus the page's own file
// ("home.html", "error.html" or "dev-authorize.html") and executed by the name
// "layout". layout.html defines {{define "layout"}} and calls
// {{template "content" .}}; each page file defines {{define "content"}}.
//
// One template function must be provided: static, which maps a file name in
// the static package to its URL, for example {{static "style.css"}} gives
// "/static/style.css?v=3f2a…".
//
// The data for every page is one handlers.Page, whose fields are
// documented there (with OnlinePerson, ErrorInfo and devgithub's
// AuthorizePage, which some of them hold).
//
// The pages hold no inline script, style attribute or event handler
// attribute, so they work under the Content-Security-Policy every response
// carries (handlers' contentSecurityPolicy: scripts, styles and everything
// else only from 'self'; images also from https: and data:). Element ids that
// static/app.js and the browser tests rely on: dev-banner, sign-in, avatar,
// user-name, user-count, user-count-label, people-count, people-count-label,
// people-list, people-more, people-more-count, presence-log,
// connection-state, sign-out,
// curl-command, copy-curl, token-expires, error-status, error-title,
// error-message, home-link, dev-error, login, dev-submit, dev-cancel.
// <main> carries data-signed-in="true" or "false".
package templates

import "embed"

// FS holds every page (*.html) of the service, ready for html/template's
// ParseFS.
//
//go:embed *.html
var FS embed.FS
