package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/headcount/headcount/internal/fakegithub"
)

// TestScreenshots drives the browser through the product and writes the
// pictures of docs/screenshots into the directory HEADCOUNT_SCREENSHOTS
// names (go tool task screenshots); without it, it skips, in CI too.
//
//   - signed-out.png: the home page before signing in;
//   - signed-in.png: signed in through GitHub, with two more people online
//     and a second tab open: three people, four connections;
//   - dev-sign-in.png: the dev sign-in provider's form, a name typed in.
//
// The first two come from a server signing in with (the fake) GitHub, as
// people meet it in production; the last from a server in dev sign-in
// mode, as `go tool task run` starts it.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("HEADCOUNT_SCREENSHOTS")
	if dir == "" {
		t.Skip("HEADCOUNT_SCREENSHOTS is not set; set it to a directory to write the screenshots there (go tool task screenshots)")
	}
	exe := needChromium(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	t.Run("github", func(t *testing.T) {
		srv, gh := startGitHubServer(t)
		gh.SignIn(fakegithub.User{ID: 1815, Login: "ada", Name: "Ada Lovelace"})
		b := startBrowser(t, exe)
		tab1 := b.first
		tab1.do("opening the home page", chromedp.Navigate(srv.URL()), chromedp.WaitVisible(chromedp.ID("sign-in")))
		tab1.screenshot(filepath.Join(dir, "signed-out.png"))

		tab1.do("signing in", chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("user-name")))
		tab1.waitCount("1")
		for _, u := range []fakegithub.User{{ID: 1906, Login: "grace", Name: "Grace Hopper"}, {ID: 2001, Login: "linus"}} {
			other := b.newPerson(u.Login)
			gh.SignIn(u)
			other.do("signing in as "+u.Login, chromedp.Navigate(srv.URL()),
				chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("user-name")))
		}
		tab2 := b.newTab("tab2")
		tab2.do("opening a second tab", chromedp.Navigate(srv.URL()), chromedp.WaitVisible(chromedp.ID("user-count")))
		tab2.waitCount("4")
		tab1.waitCount("4")
		tab1.waitLogLine("linus joined")
		tab1.waitLive()
		tab1.screenshot(filepath.Join(dir, "signed-in.png"))
	})

	t.Run("dev", func(t *testing.T) {
		srv := startDevServer(t)
		b := startBrowser(t, exe)
		tab1 := b.first
		tab1.do("opening the dev sign-in form",
			chromedp.Navigate(srv.URL()),
			chromedp.Click(chromedp.ID("sign-in")),
			chromedp.WaitVisible(chromedp.ID("login")),
			chromedp.SendKeys(chromedp.ID("login"), "grace"))
		tab1.screenshot(filepath.Join(dir, "dev-sign-in.png"))
	})
}
