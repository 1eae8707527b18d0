package devgithub_test

import (
	"crypto/rand"
	"encoding/json"
	"hash/fnv"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headcount/headcount/devgithub"
	"github.com/markbates/goth/providers/github"
	"go.uber.org/goleak"
	"golang.org/x/net/html"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	clientID     = "dev-client"
	clientSecret = "dev-secret"
	prefix       = "/dev/github"
	callbackPath = "/auth/github/callback"
)

// formPage renders every field of the page, the way the app's template
// does, so tests read the form as a browser would.
const formPage = `<!doctype html><title>Sign in</title>
{{with .Error}}<p id="error">{{.}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="scope" value="{{.Scope}}">
<input type="hidden" name="code_challenge" value="{{.CodeChallenge}}">
<input type="hidden" name="code_challenge_method" value="{{.CodeChallengeMethod}}">
<input name="login" value="{{.Login}}">
<button type="submit">Sign in</button>
<button type="submit" name="cancel" value="1">Cancel</button>
</form>`

// clock is a time source the test moves forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// rig is the provider on a loopback server, an app server serving the
// OAuth callback with goth's real GitHub provider, and a browser that does
// not follow redirects, so each hop can be checked.
type rig struct {
	t       *testing.T
	idp     *devgithub.Provider
	idpURL  string
	appURL  string
	gh      *github.Provider
	browser *http.Client
	clock   *clock
}

// signedIn is what the test's callback learned about the user.
type signedIn struct {
	UserID, Login, Name, AvatarURL, Email, State string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	rg := &rig{t: t, clock: new(clock)}
	tmpl := template.Must(template.New("form").Parse(formPage))

	// Each server's handler is set before the first request reaches it.
	var idpHandler http.Handler
	idpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idpHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(idpSrv.Close)
	appSrv := httptest.NewServer(http.HandlerFunc(rg.serveCallback))
	t.Cleanup(appSrv.Close)
	rg.idpURL, rg.appURL = idpSrv.URL, appSrv.URL

	idp, err := devgithub.New(devgithub.Config{
		BaseURL:      idpSrv.URL,
		Prefix:       prefix,
		ClientID:     clientID,
		ClientSecret: clientSecret,
		CallbackURL:  appSrv.URL + callbackPath,
		Key:          []byte(rand.Text() + rand.Text()), // fresh per rig: another rig is another key
		Render: func(w io.Writer, page devgithub.AuthorizePage) error {
			return tmpl.Execute(w, page)
		},
		Now: rg.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	idpHandler = idp
	rg.idp = idp
	rg.gh = rg.githubProvider(clientSecret)

	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	rg.browser = &http.Client{
		Transport: transport,
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return rg
}

// githubProvider is goth's GitHub provider pointed at the rig's provider,
// as headcount builds it in dev sign-in mode.
func (rg *rig) githubProvider(secret string) *github.Provider {
	gh := github.NewCustomisedURL(clientID, secret, rg.appURL+callbackPath,
		rg.idp.AuthURL(), rg.idp.TokenURL(rg.idpURL), rg.idp.ProfileURL(rg.idpURL), rg.idp.EmailURL(rg.idpURL),
		"read:user", "user:email")
	transport := &http.Transport{}
	rg.t.Cleanup(transport.CloseIdleConnections)
	gh.HTTPClient = &http.Client{Transport: transport, Timeout: 10 * time.Second}
	return gh
}

// serveCallback is the app's callback: exchange the code, read the
// profile, report the user as JSON.
func (rg *rig) serveCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		http.Error(w, "refused: "+e, http.StatusForbidden)
		return
	}
	sess := &github.Session{}
	if _, err := sess.Authorize(rg.gh, q); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	u, err := rg.gh.FetchUser(sess)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	_ = json.NewEncoder(w).Encode(signedIn{
		UserID: u.UserID, Login: u.NickName, Name: u.Name,
		AvatarURL: u.AvatarURL, Email: u.Email, State: q.Get("state"),
	})
}

// do sends req from the browser and returns the response with its body read.
func (rg *rig) do(req *http.Request) (*http.Response, string) {
	rg.t.Helper()
	resp, err := rg.browser.Do(req)
	if err != nil {
		rg.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		rg.t.Fatal(err)
	}
	return resp, string(body)
}

func (rg *rig) get(rawURL string) (*http.Response, string) {
	rg.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		rg.t.Fatal(err)
	}
	return rg.do(req)
}

// postForm posts form to path on the provider as a same-origin browser
// form would.
func (rg *rig) postForm(path string, form url.Values, header http.Header) (*http.Response, string) {
	rg.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rg.idpURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		rg.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", rg.idpURL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, vs := range header {
		req.Header[k] = vs
	}
	return rg.do(req)
}

// openForm starts sign-in as the app does and returns the form the
// browser is shown: its action and its fields.
func (rg *rig) openForm(state string) (action string, fields url.Values) {
	rg.t.Helper()
	sess, err := rg.gh.BeginAuth(state)
	if err != nil {
		rg.t.Fatal(err)
	}
	authURL, err := sess.GetAuthURL()
	if err != nil {
		rg.t.Fatal(err)
	}
	resp, body := rg.get(authURL)
	if resp.StatusCode != http.StatusOK {
		rg.t.Fatalf("GET %s: %d %s", authURL, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		rg.t.Fatalf("form Content-Type = %q", ct)
	}
	action, fields, _ = readForm(rg.t, body)
	return action, fields
}

// submit types login into the form and presses the button; it returns the
// provider's answer, not followed.
func (rg *rig) submit(state, login string) (*http.Response, string) {
	rg.t.Helper()
	action, fields := rg.openForm(state)
	fields.Set("login", login)
	return rg.postForm(action, fields, nil)
}

// code signs in as login and returns the code from the redirect.
func (rg *rig) code(login string) string {
	rg.t.Helper()
	resp, body := rg.submit("s", login)
	if resp.StatusCode != http.StatusSeeOther {
		rg.t.Fatalf("sign-in as %q: %d %s", login, resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		rg.t.Fatal(err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		rg.t.Fatalf("no code in %s", loc)
	}
	return code
}

// token signs in as login and exchanges the code the way oauth2 does.
func (rg *rig) token(login string) string {
	rg.t.Helper()
	sess := &github.Session{}
	tok, err := sess.Authorize(rg.gh, url.Values{"code": {rg.code(login)}})
	if err != nil {
		rg.t.Fatal(err)
	}
	return tok
}

// readForm parses the page's form: where it posts, its named input values
// (buttons left out, as a browser leaves out the ones not pressed) and the
// error message shown, if any.
func readForm(t *testing.T, page string) (action string, fields url.Values, errorText string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	fields = url.Values{}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch n.Data {
		case "form":
			action = attr(n, "action")
		case "input":
			fields.Set(attr(n, "name"), attr(n, "value"))
		case "p":
			if attr(n, "id") == "error" && n.FirstChild != nil {
				errorText = n.FirstChild.Data
			}
		}
	}
	if action == "" {
		t.Fatalf("no form in page:\n%s", page)
	}
	return action, fields, errorText
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// follow takes the browser to the callback the provider redirected to.
func (rg *rig) follow(resp *http.Response) (*http.Response, string) {
	rg.t.Helper()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, rg.appURL+callbackPath+"?") {
		rg.t.Fatalf("redirect to %q, want the callback", loc)
	}
	return rg.get(loc)
}

// wantID is the id the contract promises: FNV-1a 32 of the lower-cased
// login, made positive.
func wantID(login string) string {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(login)))
	return strconv.FormatInt(int64(h.Sum32())+1, 10)
}

func decodeJSON(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}
