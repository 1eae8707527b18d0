package devgithub_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSignInWithGoth walks the whole flow with goth's real GitHub provider:
// the form, the login, the redirect to the callback, the code exchange, the
// profile and the email list.
func TestSignInWithGoth(t *testing.T) {
	rg := newRig(t)

	action, fields := rg.openForm("state-1")
	if action != prefix+"/login/oauth/authorize" {
		t.Errorf("form action = %q", action)
	}
	want := url.Values{
		"client_id":    {clientID},
		"redirect_uri": {rg.appURL + callbackPath},
		"state":        {"state-1"},
		"scope":        {"read:user user:email"},
		"login":        {""},
	}
	for k := range want {
		if fields.Get(k) != want.Get(k) {
			t.Errorf("form field %s = %q, want %q", k, fields.Get(k), want.Get(k))
		}
	}

	fields.Set("login", "Octo-Cat")
	resp, body := rg.postForm(action, fields, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST login: %d %s", resp.StatusCode, body)
	}
	resp, body = rg.follow(resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	var got signedIn
	decodeJSON(t, body, &got)
	wantUser := signedIn{
		UserID:    wantID("octo-cat"),
		Login:     "Octo-Cat",
		Name:      "Octo-Cat",
		AvatarURL: rg.idpURL + prefix + "/avatars/Octo-Cat.svg",
		Email:     "octo-cat@users.noreply.localhost",
		State:     "state-1",
	}
	if got != wantUser {
		t.Errorf("signed in as %+v\nwant %+v", got, wantUser)
	}

	avatar, _ := rg.get(got.AvatarURL)
	if avatar.StatusCode != http.StatusOK {
		t.Errorf("avatar URL %s: %d", got.AvatarURL, avatar.StatusCode)
	}

	// The same name, however cased, is the same user; another name is not.
	for _, tc := range []struct {
		login  string
		sameID bool
	}{{"octo-cat", true}, {"OCTO-CAT", true}, {"octo-dog", false}} {
		resp, body := rg.follow(mustRedirect(t, rg, tc.login))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("callback for %s: %d %s", tc.login, resp.StatusCode, body)
		}
		var again signedIn
		decodeJSON(t, body, &again)
		if (again.UserID == got.UserID) != tc.sameID || again.Login != tc.login {
			t.Errorf("%s: id %s login %s; first id %s, want same id: %v",
				tc.login, again.UserID, again.Login, got.UserID, tc.sameID)
		}
	}
}

func mustRedirect(t *testing.T, rg *rig, login string) *http.Response {
	t.Helper()
	resp, body := rg.submit("s", login)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST login %q: %d %s", login, resp.StatusCode, body)
	}
	return resp
}

func TestURLsAreUnderPrefix(t *testing.T) {
	rg := newRig(t)
	origin := "http://127.0.0.1:1"
	for _, tc := range []struct{ got, want string }{
		{rg.idp.AuthURL(), rg.idpURL + prefix + "/login/oauth/authorize"},
		{rg.idp.TokenURL(origin), origin + prefix + "/login/oauth/access_token"},
		{rg.idp.ProfileURL(origin), origin + prefix + "/user"},
		{rg.idp.EmailURL(origin), origin + prefix + "/user/emails"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestAuthorizeRefusesBadClients checks that neither the form nor the
// decision serves an unknown client or redirects anywhere but the callback.
func TestAuthorizeRefusesBadClients(t *testing.T) {
	rg := newRig(t)
	callback := rg.appURL + callbackPath
	cases := []struct {
		name                  string
		clientID, redirectURI string
	}{
		{"unknown client", "someone-else", callback},
		{"no client", "", callback},
		{"foreign redirect", clientID, "http://attacker.invalid/cb"},
		{"callback with extra path", clientID, callback + "/more"},
		{"callback with extra query", clientID, callback + "?next=http://attacker.invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"client_id": {tc.clientID}, "redirect_uri": {tc.redirectURI}, "state": {"s"}}
			resp, body := rg.get(rg.idp.AuthURL() + "?" + q.Encode())
			if resp.StatusCode != http.StatusBadRequest || body == "" {
				t.Errorf("GET: %d %q, want 400 with a reason", resp.StatusCode, body)
			}
			q.Set("login", "alice")
			resp, body = rg.postForm(prefix+"/login/oauth/authorize", q, nil)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("POST: %d %q Location %q, want 400 and no redirect",
					resp.StatusCode, body, resp.Header.Get("Location"))
			}
		})
	}

	// redirect_uri may be left out: the callback is then implied.
	q := url.Values{"client_id": {clientID}, "state": {"s"}}
	if resp, body := rg.get(rg.idp.AuthURL() + "?" + q.Encode()); resp.StatusCode != http.StatusOK {
		t.Errorf("GET without redirect_uri: %d %s", resp.StatusCode, body)
	}
	q.Set("login", "alice")
	resp, _ := rg.postForm(prefix+"/login/oauth/authorize", q, nil)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, callback+"?") {
		t.Errorf("POST without redirect_uri: %d to %q", resp.StatusCode, loc)
	}
}

func TestInvalidLoginsAreRefused(t *testing.T) {
	rg := newRig(t)
	for _, login := range []string{
		"", "   ", "-alice", "alice-", "al--ice", "al_ice", "al ice", "al.ice",
		"<script>", "élodie", strings.Repeat("a", 40),
	} {
		resp, body := rg.submit("s", login)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("login %q: %d, Location %q; want 400 and no redirect",
				login, resp.StatusCode, resp.Header.Get("Location"))
			continue
		}
		_, fields, errText := readForm(t, body)
		if errText == "" {
			t.Errorf("login %q: page shows no error", login)
		}
		if fields.Get("state") != "s" || fields.Get("login") != strings.TrimSpace(login) {
			t.Errorf("login %q: re-rendered form lost its fields: %v", login, fields)
		}
	}
}

func TestValidLoginsAreAccepted(t *testing.T) {
	rg := newRig(t)
	for _, login := range []string{"a", "A1", "a-b-c", "0x", strings.Repeat("z", 39), " padded "} {
		resp, body := rg.submit("s", login)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("login %q: %d %s, want 303", login, resp.StatusCode, body)
		}
	}
}

func TestCancelDeniesAccess(t *testing.T) {
	rg := newRig(t)
	action, fields := rg.openForm("state-2")
	fields.Set("cancel", "1")
	resp, body := rg.postForm(action, fields, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if q.Get("error") != "access_denied" || q.Get("error_description") == "" ||
		q.Get("state") != "state-2" || q.Has("code") {
		t.Errorf("cancel redirected with %v", q)
	}
	resp, body = rg.follow(resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "access_denied") {
		t.Errorf("callback after cancel: %d %s", resp.StatusCode, body)
	}
}

// TestCrossOriginPostIsRefused checks that another site cannot sign a
// browser in by posting the form for it.
func TestCrossOriginPostIsRefused(t *testing.T) {
	rg := newRig(t)
	_, fields := rg.openForm("s")
	fields.Set("login", "alice")
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"cross-site fetch", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"foreign origin, old browser", http.Header{"Sec-Fetch-Site": {""}, "Origin": {"http://attacker.invalid"}}, http.StatusForbidden},
		{"same origin", nil, http.StatusSeeOther},
	} {
		resp, _ := rg.postForm(prefix+"/login/oauth/authorize", fields, tc.header)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusForbidden && resp.Header.Get("Location") != "" {
			t.Errorf("%s: redirected to %s", tc.name, resp.Header.Get("Location"))
		}
	}
}
