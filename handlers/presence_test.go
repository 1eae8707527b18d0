package handlers_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/headcount/headcount/internal/fakegithub"
	"github.com/headcount/headcount/internal/ssetest"
)

var carol = fakegithub.User{ID: 1003, Login: "carol", Name: "Carol Shaw", AvatarURL: "https://avatars.example/1003"}

// userEvents returns the data of every user event s has read.
func userEvents(s *ssetest.Stream) []string {
	var out []string
	for _, ev := range s.Events() {
		if ev.Event == "user" {
			out = append(out, ev.Data)
		}
	}
	return out
}

// presence is GET /api/presence's answer.
type presence struct {
	UserCount   int `json:"user_count"`
	PeopleCount int `json:"people_count"`
	People      []struct {
		Login     string `json:"login"`
		Name      string `json:"name"`
		AvatarURL string `json:"avatar_url"`
		Streams   int    `json:"streams"`
	} `json:"people"`
}

func (e *env) presence(c *http.Client, query string) (int, presence, string) {
	e.t.Helper()
	resp, body := get(e.t, c, e.url+"/api/presence"+query)
	var p presence
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			e.t.Fatalf("/api/presence%s: %v: %s", query, err, body)
		}
	}
	return resp.StatusCode, p, body
}

// The people count is a stream's second event; a user event tells
// everyone of an arrival and a departure, with exactly the contract's fields.
func TestUserEventPayload(t *testing.T) {
	e := start(t, nil)
	ca := browser(t)
	e.signIn(ca, alice)
	a := e.stream(ca)
	if err := a.WaitLastOf(waitTime, "people count", "1"); err != nil {
		t.Fatal(err)
	}
	if ev := a.Events(); ev[0].Event != "user count" || ev[1].Event != "people count" || ev[1].Data != "1" {
		t.Fatalf("first events %+v, want the user count then the people count", ev)
	}

	cb := browser(t)
	e.signIn(cb, bob)
	b := e.stream(&http.Client{}, "Authorization", "Bearer "+e.token(cb))
	if err := a.WaitLastOf(waitTime, "people count", "2"); err != nil {
		t.Fatal(err)
	}
	arrived := `{"login":"bob","name":"","avatar_url":"https://avatars.example/1002","connected":true,"user_count":2,"people_count":2}`
	waitFor(t, "bob's arrival", func() bool { u := userEvents(a); return len(u) == 1 && u[0] == arrived })

	b.Close()
	left := `{"login":"bob","name":"","avatar_url":"https://avatars.example/1002","connected":false,"user_count":1,"people_count":1}`
	waitFor(t, "bob's departure", func() bool { u := userEvents(a); return len(u) == 2 && u[1] == left })
	if err := a.WaitLastOf(waitTime, "people count", "1"); err != nil {
		t.Fatal(err)
	}
	if got := userEvents(a); len(got) != 2 {
		t.Errorf("alice read %q, want bob's arrival and departure only", got)
	}
	_, body := get(t, ca, e.url+"/api/count")
	if strings.TrimSpace(body) != `{"user_count":1,"people_count":1}` {
		t.Errorf("/api/count %s", body)
	}
}

// /api/presence lists people in the order they came online, each with
// their streams, at most ?limit= of them, and always counts everyone.
func TestPresenceOrderAndLimits(t *testing.T) {
	e := start(t, nil)
	var streams []*ssetest.Stream
	clients := map[string]*http.Client{}
	for i, u := range []fakegithub.User{alice, bob, carol} {
		c := browser(t)
		e.signIn(c, u)
		clients[u.Login] = c
		streams = append(streams, e.stream(c))
		// One at a time, so the order is known.
		waitFor(t, u.Login+" online", func() bool { _, p, _ := e.presence(c, ""); return p.PeopleCount == i+1 })
	}
	streams = append(streams, e.stream(clients["alice"]))
	waitFor(t, "alice's second stream", func() bool { _, p, _ := e.presence(clients["bob"], ""); return p.UserCount == 4 })

	code, p, body := e.presence(clients["bob"], "")
	if code != http.StatusOK || p.PeopleCount != 3 || p.UserCount != 4 || len(p.People) != 3 {
		t.Fatalf("/api/presence: %d %s", code, body)
	}
	want := []string{"alice Alice Liddell https://avatars.example/1001 2", "bob  https://avatars.example/1002 1", "carol Carol Shaw https://avatars.example/1003 1"}
	for i, pp := range p.People {
		if got := strings.Join([]string{pp.Login, pp.Name, pp.AvatarURL, strconv.Itoa(pp.Streams)}, " "); got != want[i] {
			t.Errorf("people[%d] = %q, want %q", i, got, want[i])
		}
	}
	// A bearer is as good as the session.
	resp, body := get(t, &http.Client{}, e.url+"/api/presence?limit=2", "Authorization", "Bearer "+e.token(clients["carol"]))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"people_count":3`) || strings.Contains(body, "carol") || !strings.Contains(body, `"login":"bob"`) {
		t.Errorf("?limit=2 with a bearer: %d %s", resp.StatusCode, body)
	}
	if code, p, _ := e.presence(clients["bob"], "?limit=1000"); code != http.StatusOK || len(p.People) != 3 {
		t.Errorf("?limit=1000: %d, %d people", code, len(p.People))
	}
	if code, p, _ := e.presence(clients["bob"], "?limit=0002"); code != http.StatusOK || len(p.People) != 2 {
		t.Errorf("?limit=0002: %d, %d people", code, len(p.People))
	}
	// Only plain digits; the refusal is JSON like every other /api/ error.
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=-1", "?limit=abc", "?limit=", "?limit=1.5", "?limit=1&limit=2", "?limit=99999999999999999999",
		"?limit=%2B5", "?limit=+5", "?limit=%205", "?limit=5%20", "?limit=0x5", "?limit=%EF%BC%95"} {
		resp, body := get(t, clients["bob"], e.url+"/api/presence"+q)
		var refusal struct{ Error string }
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal([]byte(body), &refusal) != nil || !strings.Contains(refusal.Error, "limit") {
			t.Errorf("%s: %d %s %q, want 400 and JSON naming the limit", q, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	if resp, _ := get(t, &http.Client{}, e.url+"/api/presence"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("signed out: %d, want 401", resp.StatusCode)
	}
	for _, s := range streams {
		s.Close()
	}
}

// HEADCOUNT_PRESENCE=count: numbers only, no identity leaves the server.
func TestPresenceCountOnly(t *testing.T) {
	e := start(t, map[string]string{"HEADCOUNT_PRESENCE": "count"})
	ca := browser(t)
	e.signIn(ca, alice)
	a := e.stream(ca)
	if err := a.WaitLastOf(waitTime, "people count", "1"); err != nil {
		t.Fatal(err)
	}
	cb := browser(t)
	e.signIn(cb, bob)
	b := e.stream(cb)
	if err := a.WaitLastOf(waitTime, "people count", "2"); err != nil {
		t.Fatal(err)
	}
	code, _, body := e.presence(ca, "")
	if code != http.StatusOK || strings.TrimSpace(body) != `{"user_count":2,"people_count":2,"people":[]}` {
		t.Errorf("/api/presence: %d %s, want the counts and an empty list", code, body)
	}
	b.Close()
	if err := a.WaitLastOf(waitTime, "people count", "1"); err != nil {
		t.Fatal(err)
	}
	if got := userEvents(a); len(got) != 0 {
		t.Errorf("count-only server sent user events: %q", got)
	}
}
