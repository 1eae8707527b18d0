package devgithub_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func (rg *rig) getWith(path, authorization string) (*http.Response, string) {
	rg.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rg.idpURL+path, nil)
	if err != nil {
		rg.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return rg.do(req)
}

func TestUserAPIAcceptsBothSchemes(t *testing.T) {
	rg := newRig(t)
	tok := rg.token("Mary-Jane")
	for _, auth := range []string{"Bearer " + tok, "token " + tok, "bearer " + tok} {
		resp, body := rg.getWith(prefix+"/user", auth)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%.10s...: %d %s", auth, resp.StatusCode, body)
		}
		var u map[string]any
		decodeJSON(t, body, &u)
		if u["login"] != "Mary-Jane" || u["name"] != "Mary-Jane" || u["email"] != nil {
			t.Errorf("profile %v", u)
		}
		if id, ok := u["id"].(float64); !ok || id <= 0 {
			t.Errorf("id %v, want a positive number", u["id"])
		}
	}
	resp, body := rg.getWith(prefix+"/user/emails", "token "+tok)
	var emails []map[string]any
	decodeJSON(t, body, &emails)
	if resp.StatusCode != http.StatusOK || len(emails) != 1 ||
		emails[0]["email"] != "mary-jane@users.noreply.localhost" ||
		emails[0]["primary"] != true || emails[0]["verified"] != true {
		t.Errorf("emails: %d %s", resp.StatusCode, body)
	}
}

func TestUserAPIRefusesBadTokens(t *testing.T) {
	rg := newRig(t)
	tok := rg.token("alice")
	code := rg.code("alice")
	tampered := []byte(tok)
	tampered[len(tampered)/2] ^= 1

	cases := []struct{ name, auth string }{
		{"no header", ""},
		{"garbage", "Bearer garbage"},
		{"empty bearer", "Bearer "},
		{"a code is not a token", "Bearer " + code},
		{"tampered", "Bearer " + string(tampered)},
		{"another key's token", "Bearer " + newRig(t).token("alice")},
		{"wrong scheme", "Basic " + tok},
	}
	check := func(name, auth string) {
		t.Helper()
		for _, path := range []string{"/user", "/user/emails"} {
			resp, body := rg.getWith(prefix+path, auth)
			var msg map[string]string
			decodeJSON(t, body, &msg)
			if resp.StatusCode != http.StatusUnauthorized || msg["message"] != "Bad credentials" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s on %s: %d %s", name, path, resp.StatusCode, body)
			}
		}
	}
	for _, tc := range cases {
		check(tc.name, tc.auth)
	}

	if resp, body := rg.getWith(prefix+"/user", "Bearer "+tok); resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh token refused: %d %s", resp.StatusCode, body)
	}
	rg.clock.Advance(time.Hour + time.Second)
	check("expired", "Bearer "+tok)
}
