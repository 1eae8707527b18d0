package templates_test

import (
	"bytes"
	"html/template"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/headcount/headcount/templates"
)

// These mirror the types in package handlers; the templates only see field
// names, so look-alikes are enough.
type user struct{ ID, Login, Name, AvatarURL string }

type errorInfo struct {
	Status         int
	Title, Message string
}

type authorizePage struct {
	Action, ClientID, RedirectURI, State, Scope, Login, Error string
	CodeChallenge, CodeChallengeMethod                        string
}

type onlinePerson struct{ Login, Name, AvatarURL string }

type page struct {
	Title        string
	DevMode      bool
	User         *user
	Count        int
	People       int
	ShowPeople   bool
	Online       []onlinePerson
	More         int
	Token        string
	TokenExpires string
	CurlCommand  string
	Error        *errorInfo
	Dev          *authorizePage
}

var funcs = template.FuncMap{
	"static": func(name string) string { return "/static/" + name + "?v=test" },
}

// render parses file with the layout exactly as the handlers do, executes it
// and returns the HTML text and its parsed tree.
func render(t *testing.T, file string, data page) (string, *html.Node) {
	t.Helper()
	tmpl, err := template.New(file).Funcs(funcs).ParseFS(templates.FS, "layout.html", file)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "layout", data); err != nil {
		t.Fatalf("execute %s: %v", file, err)
	}
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("%s is not HTML: %v", file, err)
	}
	return buf.String(), doc
}

func walk(n *html.Node, visit func(*html.Node)) {
	visit(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, visit)
	}
}

func elements(root *html.Node, match func(*html.Node) bool) []*html.Node {
	var found []*html.Node
	walk(root, func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			found = append(found, n)
		}
	})
	return found
}

func byTag(root *html.Node, tag string) []*html.Node {
	return elements(root, func(n *html.Node) bool { return n.Data == tag })
}

func byID(root *html.Node, id string) *html.Node {
	found := elements(root, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == id })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

// squash collapses runs of white space, as a browser shows text.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// must returns the element with id, failing the test if there is none.
func must(t *testing.T, root *html.Node, id string) *html.Node {
	t.Helper()
	n := byID(root, id)
	if n == nil {
		t.Fatalf("no element with id=%q", id)
	}
	return n
}

func wantAttr(t *testing.T, n *html.Node, key, want string) {
	t.Helper()
	got, ok := attr(n, key)
	if !ok {
		t.Errorf("<%s id=%q> has no %s attribute, want %q", n.Data, idOf(n), key, want)
	} else if got != want {
		t.Errorf("<%s id=%q> %s=%q, want %q", n.Data, idOf(n), key, got, want)
	}
}

func wantText(t *testing.T, n *html.Node, want string) {
	t.Helper()
	if got := squash(text(n)); got != want {
		t.Errorf("<%s id=%q> text %q, want %q", n.Data, idOf(n), got, want)
	}
}

func idOf(n *html.Node) string { v, _ := attr(n, "id"); return v }

// checkLayout asserts what every page must have, and that nothing in it
// would break under "default-src 'self'".
func checkLayout(t *testing.T, out string, doc *html.Node, data page) {
	t.Helper()
	if !strings.HasPrefix(strings.ToLower(out), "<!doctype html>") {
		t.Errorf("page does not start with <!doctype html>: %.40q", out)
	}
	if h := byTag(doc, "html"); len(h) != 1 {
		t.Errorf("%d <html> elements", len(h))
	} else {
		wantAttr(t, h[0], "lang", "en")
	}
	if len(elements(doc, func(n *html.Node) bool {
		name, _ := attr(n, "name")
		content, _ := attr(n, "content")
		return n.Data == "meta" && name == "viewport" && strings.Contains(content, "width=device-width")
	})) != 1 {
		t.Error("no viewport meta")
	}

	titles := byTag(doc, "title")
	if len(titles) != 1 {
		t.Fatalf("%d <title> elements", len(titles))
	}
	title := text(titles[0])
	if !strings.Contains(title, "headcount") || !strings.Contains(title, data.Title) {
		t.Errorf("title %q, want it to hold %q and headcount", title, data.Title)
	}

	links := map[string]string{}
	for _, l := range byTag(doc, "link") {
		rel, _ := attr(l, "rel")
		links[rel], _ = attr(l, "href")
	}
	if links["stylesheet"] != "/static/style.css?v=test" {
		t.Errorf("stylesheet link %q", links["stylesheet"])
	}
	if links["icon"] != "/static/favicon.svg?v=test" {
		t.Errorf("icon link %q", links["icon"])
	}

	var appScript bool
	for _, s := range byTag(doc, "script") {
		src, ok := attr(s, "src")
		if !ok || strings.TrimSpace(text(s)) != "" {
			t.Errorf("inline <script>: %q", text(s))
		}
		if _, deferred := attr(s, "defer"); src == "/static/app.js?v=test" && deferred {
			appScript = true
		}
	}
	if !appScript {
		t.Error(`no <script src="/static/app.js?v=test" defer>`)
	}
	if styles := byTag(doc, "style"); len(styles) != 0 {
		t.Errorf("%d inline <style> elements", len(styles))
	}
	ids := map[string]int{}
	walk(doc, func(n *html.Node) {
		for _, a := range n.Attr {
			switch {
			case a.Key == "style":
				t.Errorf("<%s> has a style attribute %q", n.Data, a.Val)
			case strings.HasPrefix(a.Key, "on"):
				t.Errorf("<%s> has an event handler attribute %s=%q", n.Data, a.Key, a.Val)
			case a.Key == "id":
				ids[a.Val]++
			case a.Key == "href" || a.Key == "src" || a.Key == "action":
				if strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
					t.Errorf("<%s> %s=%q", n.Data, a.Key, a.Val)
				}
			}
		}
	})
	for id, n := range ids {
		if n > 1 {
			t.Errorf("id %q used %d times", id, n)
		}
	}

	headers := byTag(doc, "header")
	if len(headers) != 1 || !strings.Contains(text(headers[0]), "headcount") {
		t.Error("no header naming headcount")
	}
	mains := byTag(doc, "main")
	if len(mains) != 1 {
		t.Fatalf("%d <main> elements", len(mains))
	}
	wantAttr(t, mains[0], "data-signed-in", map[bool]string{true: "true", false: "false"}[data.User != nil])

	banner := byID(doc, "dev-banner")
	switch {
	case data.DevMode && banner == nil:
		t.Error("dev mode, but no #dev-banner")
	case data.DevMode && !strings.Contains(text(banner), "not GitHub"):
		t.Errorf("#dev-banner does not say sign-in is not GitHub: %q", squash(text(banner)))
	case !data.DevMode && banner != nil:
		t.Error("#dev-banner shown outside dev mode")
	}
}

func signedIn(count int) page {
	return page{
		User:         &user{ID: "42", Login: "octocat", Name: "The Octocat", AvatarURL: "https://avatars.githubusercontent.com/u/583231?v=4"},
		Count:        count,
		Token:        "eyJhbGciOi.payload.sig",
		TokenExpires: "2030-01-02T03:04:05Z",
		CurlCommand:  `curl -N -H "Authorization: Bearer eyJhbGciOi.payload.sig" http://localhost:8080/events`,
	}
}

func TestHomeSignedOut(t *testing.T) {
	for _, dev := range []bool{false, true} {
		data := page{DevMode: dev}
		out, doc := render(t, "home.html", data)
		checkLayout(t, out, doc, data)

		in := must(t, doc, "sign-in")
		if in.Data != "a" {
			t.Errorf("#sign-in is a <%s>, want a link that works without JavaScript", in.Data)
		}
		wantAttr(t, in, "href", "/auth/github")
		wantAttr(t, in, "class", "button")
		wantText(t, in, "Sign in with GitHub")
		if !strings.Contains(text(doc), "headcount shows") {
			t.Error("no line saying what headcount is")
		}
		for _, id := range []string{"user-count", "sign-out", "curl-command", "avatar", "connection-state"} {
			if byID(doc, id) != nil {
				t.Errorf("signed out, yet #%s is shown", id)
			}
		}
	}
}

func TestHomeSignedIn(t *testing.T) {
	tests := []struct {
		count int
		words string
	}{
		{count: 1, words: "connection"},
		{count: 3, words: "connections"},
		{count: 0, words: "connections"},
	}
	for _, tt := range tests {
		for _, dev := range []bool{false, true} {
			data := signedIn(tt.count)
			data.DevMode = dev
			out, doc := render(t, "home.html", data)
			checkLayout(t, out, doc, data)

			count := must(t, doc, "user-count")
			if got, want := text(count), strconv.Itoa(tt.count); got != want {
				t.Errorf("#user-count text %q, want exactly %q", got, want)
			}
			wantAttr(t, count, "aria-live", "polite")
			wantText(t, must(t, doc, "user-count-label"), tt.words)

			state := must(t, doc, "connection-state")
			wantAttr(t, state, "data-state", "connecting")
			wantText(t, state, "Connecting…")

			avatar := must(t, doc, "avatar")
			if avatar.Data != "img" {
				t.Errorf("#avatar is a <%s>", avatar.Data)
			}
			wantAttr(t, avatar, "src", data.User.AvatarURL)
			wantAttr(t, avatar, "alt", "")
			for _, dim := range []string{"width", "height"} {
				if v, _ := attr(avatar, dim); v == "" {
					t.Errorf("#avatar has no %s", dim)
				}
			}
			wantText(t, must(t, doc, "user-name"), "The Octocat")
			if !strings.Contains(text(doc), "@octocat") {
				t.Error("no @login on the page")
			}

			signOut := must(t, doc, "sign-out")
			wantAttr(t, signOut, "type", "submit")
			wantText(t, signOut, "Sign out")
			form := signOut.Parent
			for form != nil && form.Data != "form" {
				form = form.Parent
			}
			if form == nil {
				t.Fatal("#sign-out is not inside a form")
			}
			wantAttr(t, form, "method", "post")
			wantAttr(t, form, "action", "/logout")

			curl := must(t, doc, "curl-command")
			if curl.Data != "code" || curl.Parent.Data != "pre" {
				t.Errorf("#curl-command is <%s> in <%s>, want <code> in <pre>", curl.Data, curl.Parent.Data)
			}
			if got := text(curl); got != data.CurlCommand {
				t.Errorf("#curl-command text %q, want %q", got, data.CurlCommand)
			}
			copyButton := must(t, doc, "copy-curl")
			wantAttr(t, copyButton, "type", "button")
			wantText(t, copyButton, "Copy")
			if !strings.Contains(squash(text(doc)), "expires at "+data.TokenExpires) {
				t.Errorf("no note that the token expires at %s", data.TokenExpires)
			}
			if byID(doc, "sign-in") != nil {
				t.Error("signed in, yet #sign-in is shown")
			}
		}
	}
}

// TestHomeWhoIsOnline: every number says what it counts, and the people
// online are avatars with their names as alt text and tooltip, then "and
// N more".
func TestHomeWhoIsOnline(t *testing.T) {
	data := signedIn(5)
	data.People, data.ShowPeople, data.More = 3, true, 1
	data.Online = []onlinePerson{{Login: "ada", Name: "Ada Lovelace", AvatarURL: "https://avatars.example/ada"}, {Login: "bob"}}
	out, doc := render(t, "home.html", data)
	checkLayout(t, out, doc, data)
	wantText(t, must(t, doc, "people-count"), "3")
	wantText(t, must(t, doc, "people-count-label"), "people online")
	if line := squash(text(must(t, doc, "live-heading").Parent)); !strings.Contains(line, "3 people online · 5 connections") {
		t.Errorf("the counts do not read \"3 people online · 5 connections\": %q", line)
	}
	imgs := byTag(must(t, doc, "people-list"), "img")
	if len(imgs) != 2 {
		t.Fatalf("%d avatars, want 2", len(imgs))
	}
	wantAttr(t, imgs[0], "alt", "Ada Lovelace")
	wantAttr(t, imgs[0], "title", "Ada Lovelace")
	wantAttr(t, imgs[0], "src", "https://avatars.example/ada")
	wantAttr(t, imgs[1], "alt", "bob")
	wantAttr(t, imgs[1], "src", "/static/favicon.svg?v=test")
	more := must(t, doc, "people-more")
	if _, hidden := attr(more, "hidden"); hidden {
		t.Error("#people-more hidden with one more person online")
	}
	wantText(t, more, "and 1 more")
	log := must(t, doc, "presence-log")
	wantAttr(t, log, "aria-live", "polite")

	one := signedIn(1)
	one.People, one.ShowPeople = 1, true
	_, doc = render(t, "home.html", one)
	wantText(t, must(t, doc, "people-count-label"), "person online")
	if _, hidden := attr(must(t, doc, "people-more"), "hidden"); !hidden {
		t.Error("#people-more shown with nobody more")
	}

	// HEADCOUNT_PRESENCE=count: numbers only.
	countOnly := signedIn(2)
	countOnly.People = 2
	_, doc = render(t, "home.html", countOnly)
	must(t, doc, "people-count")
	for _, id := range []string{"people-list", "people-more", "presence-log"} {
		if byID(doc, id) != nil {
			t.Errorf("count only, yet #%s is shown", id)
		}
	}
}

func TestHomeNameFallsBackToLogin(t *testing.T) {
	data := signedIn(2)
	data.User.Name = ""
	_, doc := render(t, "home.html", data)
	wantText(t, must(t, doc, "user-name"), "octocat")
}

func TestHomeAvatarFallback(t *testing.T) {
	data := signedIn(2)
	data.User.AvatarURL = ""
	_, doc := render(t, "home.html", data)
	wantAttr(t, must(t, doc, "avatar"), "src", "/static/favicon.svg?v=test")

	data.User.AvatarURL = "javascript:alert(1)"
	out, doc := render(t, "home.html", data)
	checkLayout(t, out, doc, data)
	if src, _ := attr(must(t, doc, "avatar"), "src"); strings.Contains(src, "alert") {
		t.Errorf("a javascript: avatar URL got through: %q", src)
	}
}

func TestValuesAreEscaped(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	data := signedIn(3)
	data.Title = evil
	data.User.Name = evil
	data.User.Login = `bob"><img src=x onerror=alert(1)>`
	data.CurlCommand = `curl -N -H "Authorization: Bearer a<b>&c" http://localhost:8080/events`
	out, doc := render(t, "home.html", data)
	checkLayout(t, out, doc, data)

	if strings.Contains(out, "<script>alert") || strings.Contains(out, "<img src=x") || strings.Contains(out, "<b>&c") {
		t.Errorf("unescaped user data in the page:\n%s", out)
	}
	if !strings.Contains(out, "&lt;script&gt;") {
		t.Error("the name was not HTML-escaped")
	}
	wantText(t, must(t, doc, "user-name"), evil)
	if got := text(must(t, doc, "curl-command")); got != data.CurlCommand {
		t.Errorf("#curl-command text %q, want %q", got, data.CurlCommand)
	}
	if !strings.Contains(text(doc), "@"+data.User.Login) {
		t.Error("the login does not read back as written")
	}
}

func TestTitle(t *testing.T) {
	_, doc := render(t, "home.html", page{Title: "Not found"})
	if got := text(byTag(doc, "title")[0]); got != "Not found · headcount" {
		t.Errorf("title %q", got)
	}
	_, doc = render(t, "home.html", page{})
	if got := text(byTag(doc, "title")[0]); got != "headcount" {
		t.Errorf("title %q", got)
	}
}

func TestErrorPage(t *testing.T) {
	tests := []struct {
		name string
		data page
	}{
		{"not found", page{Title: "Not found", Error: &errorInfo{Status: 404, Title: "Page not found", Message: "There is nothing at /nope."}}},
		{"bad state, dev mode", page{DevMode: true, Error: &errorInfo{Status: 400, Title: "Sign-in failed", Message: "The sign-in link was stale or tampered with. Please try again."}}},
		{"provider down, signed in", page{User: &user{Login: "octocat"}, Error: &errorInfo{Status: 502, Title: "GitHub unreachable", Message: "GitHub did not answer. Try again in a minute."}}},
		{"escaped", page{Error: &errorInfo{Status: 400, Title: "<b>bad</b>", Message: `<a href="x">y</a>`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, doc := render(t, "error.html", tt.data)
			checkLayout(t, out, doc, tt.data)
			e := tt.data.Error
			wantText(t, must(t, doc, "error-status"), strconv.Itoa(e.Status))
			wantText(t, must(t, doc, "error-title"), e.Title)
			wantText(t, must(t, doc, "error-message"), e.Message)
			if must(t, doc, "error-title").Data != "h1" {
				t.Error("#error-title is not the page's <h1>")
			}
			home := must(t, doc, "home-link")
			wantAttr(t, home, "href", "/")
			if strings.Contains(out, "<b>bad") {
				t.Error("error title not escaped")
			}
		})
	}
}

func TestErrorPageWithoutErrorInfo(t *testing.T) {
	out, doc := render(t, "error.html", page{})
	checkLayout(t, out, doc, page{})
	wantText(t, must(t, doc, "error-title"), "Something went wrong")
	wantAttr(t, must(t, doc, "home-link"), "href", "/")
}

func TestDevAuthorizePage(t *testing.T) {
	dev := &authorizePage{
		Action:      "/dev/login/oauth/authorize",
		ClientID:    "headcount-dev",
		RedirectURI: "http://localhost:8080/auth/github/callback",
		State:       `st"ate<>&`,
		Scope:       "read:user",
		Login:       "mona",
		Error:       "A user name is 1 to 39 letters, digits or hyphens.",

		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
	}
	data := page{DevMode: true, Title: "Development sign-in", Dev: dev}
	out, doc := render(t, "dev-authorize.html", data)
	checkLayout(t, out, doc, data)

	h1 := byTag(doc, "h1")
	if len(h1) != 1 || !strings.Contains(text(h1[0]), "Development sign-in") {
		t.Error(`no "Development sign-in" heading`)
	}
	if !strings.Contains(squash(text(doc)), "built-in stand-in for GitHub") {
		t.Error("no note that this is headcount's stand-in for GitHub")
	}
	alert := must(t, doc, "dev-error")
	wantAttr(t, alert, "role", "alert")
	wantText(t, alert, dev.Error)

	forms := byTag(doc, "form")
	if len(forms) != 1 {
		t.Fatalf("%d forms", len(forms))
	}
	form := forms[0]
	wantAttr(t, form, "method", "post")
	wantAttr(t, form, "action", dev.Action)

	hidden := map[string]string{}
	for _, in := range elements(form, func(n *html.Node) bool { v, _ := attr(n, "type"); return n.Data == "input" && v == "hidden" }) {
		name, _ := attr(in, "name")
		hidden[name], _ = attr(in, "value")
	}
	want := map[string]string{"state": dev.State, "client_id": dev.ClientID, "redirect_uri": dev.RedirectURI, "scope": dev.Scope,
		"code_challenge": dev.CodeChallenge, "code_challenge_method": dev.CodeChallengeMethod}
	for k, v := range want {
		if hidden[k] != v {
			t.Errorf("hidden %s=%q, want %q", k, hidden[k], v)
		}
	}

	login := must(t, doc, "login")
	for k, v := range map[string]string{"type": "text", "name": "login", "autocomplete": "username", "maxlength": "39", "value": "mona", "aria-invalid": "true"} {
		wantAttr(t, login, k, v)
	}
	if _, ok := attr(login, "required"); !ok {
		t.Error("#login is not required")
	}
	labels := elements(doc, func(n *html.Node) bool { v, _ := attr(n, "for"); return n.Data == "label" && v == "login" })
	if len(labels) != 1 || squash(text(labels[0])) != "User name" {
		t.Error(`#login has no "User name" label`)
	}

	submit := must(t, doc, "dev-submit")
	wantAttr(t, submit, "type", "submit")
	wantText(t, submit, "Continue")

	cancels := elements(form, func(n *html.Node) bool { v, _ := attr(n, "name"); return n.Data == "button" && v == "cancel" })
	if len(cancels) != 1 {
		t.Fatalf("%d cancel buttons", len(cancels))
	}
	wantAttr(t, cancels[0], "value", "1")
	wantText(t, cancels[0], "Cancel")
	if _, ok := attr(cancels[0], "formnovalidate"); !ok {
		t.Error("the cancel button lacks formnovalidate, so an empty name would block it")
	}
}

func TestDevAuthorizePageWithoutError(t *testing.T) {
	data := page{DevMode: true, Dev: &authorizePage{Action: "/dev/authorize", State: "s"}}
	out, doc := render(t, "dev-authorize.html", data)
	checkLayout(t, out, doc, data)
	if n := elements(doc, func(n *html.Node) bool { v, _ := attr(n, "role"); return v == "alert" }); len(n) != 0 {
		t.Errorf("an alert without an error: %q", text(n[0]))
	}
	if _, ok := attr(must(t, doc, "login"), "aria-invalid"); ok {
		t.Error("#login marked invalid without an error")
	}
}

// TestEveryPageIsCovered keeps this file honest when a page is added.
func TestEveryPageIsCovered(t *testing.T) {
	files, err := fs.Glob(templates.FS, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dev-authorize.html", "error.html", "home.html", "layout.html"}
	if !slices.Equal(files, want) {
		t.Errorf("pages %v, tested pages %v", files, want)
	}
	for _, f := range files {
		if f == "layout.html" {
			continue
		}
		tmpl, err := template.New(f).Funcs(funcs).ParseFS(templates.FS, "layout.html", f)
		if err != nil {
			t.Errorf("parse %s: %v", f, err)
			continue
		}
		if tmpl.Lookup("content") == nil || tmpl.Lookup("layout") == nil {
			t.Errorf("%s with the layout lacks a content or layout template", f)
		}
	}
}
