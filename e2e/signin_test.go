package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/headcount/headcount/internal/fakegithub"
	"github.com/headcount/headcount/internal/testserver"
)

// TestBrowserSignInWithGitHub is flow A: a person signs in through GitHub
// (the fake one, through the real goth provider), sees their name and the
// live count, opens and closes a second tab and signs out.
func TestBrowserSignInWithGitHub(t *testing.T) {
	t.Parallel()
	exe := needChromium(t)
	srv, gh := startGitHubServer(t)
	b := startBrowser(t, exe)
	gh.SignIn(fakegithub.User{ID: 1815, Login: "ada", Name: "Ada Lovelace"})
	tab1 := b.first

	tab1.do("opening the home page", chromedp.Navigate(srv.URL()), chromedp.WaitVisible(chromedp.ID("sign-in")))
	if got := tab1.text("sign-in"); got != "Sign in with GitHub" {
		t.Errorf("the sign-in button reads %q, want %q", got, "Sign in with GitHub")
	}
	if eval[bool](tab1, `document.getElementById('dev-banner') !== null`) {
		t.Errorf("the dev sign-in banner shows on a server signing in with GitHub")
	}
	tab1.do("clicking Sign in with GitHub", chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("user-name")))
	if gh.Requests("/user") == 0 {
		t.Errorf("signed in without asking the fake GitHub for the profile")
	}
	checkSignedIn(t, tab1, "Ada Lovelace")

	followTabsAndSignOut(t, b, srv)
}

// TestBrowserDevSignIn is flow B: with no GitHub app configured, the same
// "Sign in with GitHub" button leads to the dev provider's form; a person
// types a name and lands signed in, with the dev banner on the page. Then
// the same second tab and sign-out as flow A.
func TestBrowserDevSignIn(t *testing.T) {
	t.Parallel()
	exe := needChromium(t)
	srv := startDevServer(t)
	b := startBrowser(t, exe)
	tab1 := b.first

	tab1.do("opening the home page", chromedp.Navigate(srv.URL()),
		chromedp.WaitVisible(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("dev-banner")))
	tab1.do("clicking Sign in with GitHub", chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("login")))
	tab1.do("typing a user name and continuing",
		chromedp.SendKeys(chromedp.ID("login"), "grace"),
		chromedp.Click(chromedp.ID("dev-submit")),
		chromedp.WaitVisible(chromedp.ID("user-name")))
	checkSignedIn(t, tab1, "grace")
	tab1.do("seeing the dev sign-in banner", chromedp.WaitVisible(chromedp.ID("dev-banner")))
	// Dev users are shown with the avatars the dev provider draws.
	tab1.waitPresence("1", "1", [][3]string{{"grace", "grace", srv.URL() + "/dev/github/avatars/grace.svg"}})

	followTabsAndSignOut(t, b, srv)
}

// checkSignedIn checks that the tab shows name signed in, its stream live
// and counted.
func checkSignedIn(t *testing.T, tb *tab, name string) {
	t.Helper()
	if got := tb.text("user-name"); got != name {
		t.Errorf("%s: #user-name reads %q, want %q", tb.name, got, name)
	}
	if got := eval[string](tb, `document.querySelector('main').dataset.signedIn`); got != "true" {
		t.Errorf("%s: main[data-signed-in] is %q, want true", tb.name, got)
	}
	tb.waitCount("1")
	tb.waitLive()
	if got := tb.text("user-count-label"); got != "connection" {
		t.Errorf("%s: #user-count-label reads %q beside 1, want %q", tb.name, got, "connection")
	}
}

// followTabsAndSignOut goes on from a first tab signed in and counted: a
// second tab (same browser, same cookies) counts 2 and the first tab
// follows by itself; closing it brings the first back to 1; signing out
// in the first turns the page signed out and ends its stream.
func followTabsAndSignOut(t *testing.T, b *browser, srv *testserver.Server) {
	t.Helper()
	tab1 := b.first
	waitSubscribers(t, srv, 1)
	// A mark on the page: still there later, it shows the count changed
	// in place, never by a reload.
	eval[bool](tab1, `(window.headcountE2E = true)`)

	tab2 := b.newTab("tab2")
	tab2.do("opening the home page in a second tab", chromedp.Navigate(srv.URL()), chromedp.WaitVisible(chromedp.ID("user-count")))
	tab2.waitCount("2")
	tab2.waitLive()
	tab1.waitCount("2")
	if got := tab1.text("user-count-label"); got != "connections" {
		t.Errorf("tab1: #user-count-label reads %q beside 2, want %q", got, "connections")
	}
	waitSubscribers(t, srv, 2)

	tab2.close()
	tab1.waitCount("1")
	waitSubscribers(t, srv, 1)
	if !eval[bool](tab1, `window.headcountE2E === true`) {
		t.Errorf("tab1 was reloaded: the count should change in place")
	}

	tab1.do("clicking Sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in")))
	if got := eval[string](tab1, `document.querySelector('main').dataset.signedIn`); got != "false" {
		t.Errorf("after signing out, main[data-signed-in] is %q, want false", got)
	}
	waitSubscribers(t, srv, 0)
}
