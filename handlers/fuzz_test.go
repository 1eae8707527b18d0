package handlers_test

import (
	"bufio"
	"github.com/headcount/headcount/internal/poll"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/auth"
)

// FuzzCallbackQuery sends arbitrary queries to the OAuth callback of a
// browser with a sign-in in flight. $STATE in the input stands for that
// sign-in's real state. The answer is always a 4xx page, never a session,
// a 5xx or a panic, and it never touches another sign-in's cookie.
func FuzzCallbackQuery(f *testing.F) {
	e := start(f, nil)
	c := browser(f)
	authURL := e.beginSignIn(c)
	state := authURL.Query().Get("state")
	var stateCk *http.Cookie
	for _, ck := range c.Jar.Cookies(mustURL(f, e.url)) {
		if strings.HasPrefix(ck.Name, auth.OAuthStateCookie) {
			stateCk = ck
		}
	}
	if stateCk == nil {
		f.Fatal("no sign-in cookie")
	}
	f.Add("state=$STATE&code=abc")
	f.Add("state=$STATE&error=access_denied")
	f.Add("error=redirect_uri_mismatch&error_description=%3Cscript%3E")
	f.Add("state=$STATE&state=other&code=a&code=b")
	f.Add("code=" + strings.Repeat("x", 5000))
	f.Add("state=%zz&code=%00")
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.Cleanup(client.CloseIdleConnections)
	f.Fuzz(func(t *testing.T, query string) {
		query = strings.ReplaceAll(query, "$STATE", state)
		req, err := http.NewRequest(http.MethodGet, e.url+"/auth/github/callback", nil)
		if err != nil {
			t.Skip()
		}
		req.URL.RawQuery = query
		req.AddCookie(stateCk)
		resp, err := client.Do(req)
		if err != nil {
			return // the client would not send it
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 4 {
			t.Fatalf("callback ?%q answered %d, want a 4xx", query, resp.StatusCode)
		}
		q, _ := url.ParseQuery(query)
		for _, ck := range resp.Cookies() {
			switch {
			case ck.Name == auth.SessionCookie && ck.MaxAge >= 0:
				t.Fatalf("callback ?%q set a session", query)
			case ck.Name == stateCk.Name && q.Get("state") != state:
				t.Fatalf("callback ?%q touched a sign-in it does not name", query)
			}
		}
	})
}

// FuzzEventsHeaders opens the stream with arbitrary Authorization and
// Last-Event-ID values beside a good session cookie; $TOKEN stands for a
// good bearer token. A Bearer value is judged alone (200 only for the
// good token), any other leaves the cookie to decide (200); nothing is a
// 5xx, and the count is back to zero after each stream.
func FuzzEventsHeaders(f *testing.F) {
	e := start(f, nil)
	c := browser(f)
	e.signIn(c, alice)
	token := e.token(c)
	session := e.sessionCookie(c)
	f.Add("Bearer $TOKEN", "")
	f.Add("Bearer $TOKEN", "42")
	f.Add("Basic YWxpY2U6eA==", "-1")
	f.Add("Bearer x.y.z", "\x00")
	f.Add("bearer  $TOKEN  ", strings.Repeat("9", 400))
	f.Add("", "not a number")
	client := &http.Client{Timeout: 10 * time.Second}
	f.Cleanup(client.CloseIdleConnections)
	f.Fuzz(func(t *testing.T, authorization, lastEventID string) {
		authorization = strings.ReplaceAll(authorization, "$TOKEN", token)
		req, err := http.NewRequest(http.MethodGet, e.url+"/events", nil)
		if err != nil {
			t.Skip()
		}
		req.Header.Set("Authorization", authorization)
		req.Header.Set("Last-Event-ID", lastEventID)
		req.AddCookie(session)
		resp, err := client.Do(req)
		if err != nil {
			return // a value the client would not send
		}
		// What the server read: header values lose surrounding blanks.
		sent := strings.Trim(authorization, " \t")
		want := http.StatusOK
		if auth.IsBearer(sent) {
			if tok, ok := auth.Bearer(sent); !ok || tok != token {
				want = http.StatusUnauthorized
			}
		}
		if resp.StatusCode != want {
			resp.Body.Close()
			t.Fatalf("Authorization %q, Last-Event-ID %q: %d, want %d", authorization, lastEventID, resp.StatusCode, want)
		}
		if want == http.StatusOK {
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "id: ") && !strings.HasPrefix(line, "event: ") {
				resp.Body.Close()
				t.Fatalf("stream began %q (%v)", line, err)
			}
		}
		resp.Body.Close()
		if poll.Until(waitTime, func() bool { return e.srv.Hub().Stats().Subscribers == 0 }) != nil {
			t.Fatalf("the count did not go back to zero: %+v", e.srv.Hub().Stats())
		}
	})
}
