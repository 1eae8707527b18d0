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
// The data for every page is one value with these fields (package handlers
// declares the real type):
//
//	Title        string         // page title; " · headcount" is added to it
//	DevMode      bool           // dev sign-in mode: every page shows #dev-banner
//	User         *User          // nil when signed out; {ID, Login, Name, AvatarURL string}
//	Count        int            // the number of streams when the page was rendered
//	People       int            // the number of people online then
//	ShowPeople   bool           // who is online may be shown (HEADCOUNT_PRESENCE=names)
//	Online       []OnlinePerson // the first dozen online: {Login, Name, AvatarURL string}
//	More         int            // how many more are online than Online lists
//	Token        string         // a fresh bearer token (signed in only)
//	TokenExpires string         // RFC 3339 expiry of Token
//	CurlCommand  string         // the ready-to-copy curl -N command
//	Error        *ErrorInfo     // error.html: {Status int; Title, Message string}
//	Dev          *AuthorizePage // dev-authorize.html: {Action, ClientID,
//	                            // RedirectURI, State, Scope, Login, Error,
//	                            // CodeChallenge, CodeChallengeMethod string}
//
// The pages hold no inline script, style attribute or event handler
// attribute, so they work under the Content-Security-Policy
// "default-src 'self'; img-src 'self' https: data:". Element ids that
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
