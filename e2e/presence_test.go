package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/headcount/headcount/internal/fakegithub"
)

// person is a GitHub user of the presence test and the avatar the fake
// GitHub gives them.
type person struct {
	user   fakegithub.User
	avatar string
}

// avatarsJS describes the page's list of who is online: alt, title and src of each avatar.
const avatarsJS = `JSON.stringify([...document.querySelectorAll('#people-list img')].map((img) => [img.alt, img.title, img.getAttribute('src')]))`

// waitPresence waits until the tab shows people and streams in words,
// and exactly the avatars want (alt, title and src each), in order.
func (tb *tab) waitPresence(people, streams string, want [][3]string) {
	tb.b.t.Helper()
	w, _ := json.Marshal(want)
	tb.waitCount(streams)
	tb.waitUntil("the page shows "+people+" people and their avatars "+string(w),
		`(people, want) => document.getElementById('people-count')?.textContent.trim() === people &&
			JSON.stringify([...document.querySelectorAll('#people-list img')].map((img) => [img.alt, img.title, img.getAttribute('src')])) === want`,
		`JSON.stringify({people: document.getElementById('people-count')?.textContent ?? null, avatars: `+avatarsJS+`})`,
		people, string(w))
}

// waitLogLine waits until the tab's live log has line as its last line.
func (tb *tab) waitLogLine(line string) {
	tb.b.t.Helper()
	tb.waitUntil("the log's last line reads "+line,
		`(line) => { const l = document.querySelector('#presence-log li:last-child'); return l !== null && l.textContent === line }`,
		`JSON.stringify([...document.querySelectorAll('#presence-log li')].map((li) => li.textContent))`,
		line)
}

// TestBrowserPresence: three people, one with two tabs. Every tab shows 3
// people and 4 connections, in words, with everyone's avatar; closing
// the second tab of the two-tab person changes the connections only;
// signing one person out tells the others' tabs that they left.
func TestBrowserPresence(t *testing.T) {
	t.Parallel()
	exe := needChromium(t)
	srv, gh := startGitHubServer(t)
	b := startBrowser(t, exe)
	people := []person{
		{user: fakegithub.User{ID: 1815, Login: "ada", Name: "Ada Lovelace"}},
		{user: fakegithub.User{ID: 1906, Login: "grace", Name: "Grace Hopper"}},
		{user: fakegithub.User{ID: 2001, Login: "linus"}},
	}
	var tabs []*tab
	var want [][3]string
	for i := range people {
		p := &people[i]
		p.avatar = gh.URL + "/avatars/u/" + itoa(p.user.ID) + "?v=4"
		tb := b.first
		if i > 0 {
			tb = b.newPerson(p.user.Login)
		}
		gh.SignIn(p.user)
		tb.do("signing in as "+p.user.Login, chromedp.Navigate(srv.URL()),
			chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("user-name")))
		name := p.user.Name
		if name == "" {
			name = p.user.Login
		}
		want = append(want, [3]string{name, name, p.avatar})
		tb.waitPresence(itoa(int64(i+1)), itoa(int64(i+1)), want)
		for _, earlier := range tabs {
			earlier.waitLogLine(name + " joined")
		}
		tabs = append(tabs, tb)
	}
	ada2 := b.newTab("ada2")
	ada2.do("opening a second tab as ada", chromedp.Navigate(srv.URL()), chromedp.WaitVisible(chromedp.ID("user-count")))
	tabs = append(tabs, ada2)
	for _, tb := range tabs {
		tb.waitPresence("3", "4", want)
		line := squash(tb.text("live-heading") + " " + eval[string](tb, `document.querySelector('.count-line').textContent`))
		if !strings.Contains(line, "3 people online · 4 connections") {
			t.Errorf("%s: the counts read %q, want them to say \"3 people online · 4 connections\"", tb.name, line)
		}
	}
	if got := eval[string](tabs[1], `document.getElementById('presence-log').getAttribute('aria-live')`); got != "polite" {
		t.Errorf("#presence-log aria-live=%q, want polite", got)
	}

	// Ada closes her second tab: one connection less, nobody left.
	ada2.close()
	for _, tb := range tabs[:3] {
		tb.waitPresence("3", "3", want)
	}
	// Grace signs out: the others hear she left.
	tabs[1].do("signing out as grace", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in")))
	gone := [][3]string{want[0], want[2]}
	for _, tb := range []*tab{tabs[0], tabs[2]} {
		tb.waitLogLine("Grace Hopper left")
		tb.waitPresence("2", "2", gone)
	}
	for _, tb := range []*tab{tabs[0], tabs[2]} {
		log := eval[string](tb, `JSON.stringify([...document.querySelectorAll('#presence-log li')].map((li) => li.textContent))`)
		if strings.Contains(log, "Ada Lovelace left") {
			t.Errorf("%s: closing ada's second tab was announced: %s", tb.name, log)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }
