package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/headcount/headcount/internal/testcert"
)

// TestBrowserTenTabsOverHTTP2 opens ten tabs of one browser on headcount
// serving HTTPS itself, with a certificate the test made (Chromium accepts
// exactly it, by its key's hash): over HTTP/1.1 a browser holds at most six
// connections per site and the seventh tab's stream never opens; over
// HTTP/2 every tab's stream shares one connection and all ten show the
// live count.
func TestBrowserTenTabsOverHTTP2(t *testing.T) {
	t.Parallel()
	exe := needChromium(t)
	cert := testcert.Write(t, t.TempDir())
	srv := startServer(t, map[string]string{"HEADCOUNT_TLS_CERT": cert.CertFile, "HEADCOUNT_TLS_KEY": cert.KeyFile})
	if !strings.HasPrefix(srv.URL(), "https://localhost:") {
		t.Fatalf("base URL %s, want https://localhost:... by default under TLS", srv.URL())
	}
	b := startBrowser(t, exe, chromedp.Flag("ignore-certificate-errors-spki-list", cert.SPKI))
	tab1 := b.first
	tab1.do("opening the home page over HTTPS", chromedp.Navigate(srv.URL()), chromedp.WaitVisible(chromedp.ID("sign-in")))
	if proto := eval[string](tab1, `performance.getEntriesByType('navigation')[0].nextHopProtocol`); proto != "h2" {
		t.Fatalf("the page came over %q, want h2", proto)
	}
	tab1.do("clicking Sign in with GitHub", chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("login")))
	tab1.do("typing a user name and continuing",
		chromedp.SendKeys(chromedp.ID("login"), "hopper"),
		chromedp.Click(chromedp.ID("dev-submit")),
		chromedp.WaitVisible(chromedp.ID("user-name")))
	tab1.waitCount("1")
	tab1.waitLive()

	tabs := []*tab{tab1}
	for i := 2; i <= 10; i++ {
		tb := b.newTab(fmt.Sprintf("tab%d", i))
		tb.do("opening the home page in another tab", chromedp.Navigate(srv.URL()), chromedp.WaitVisible(chromedp.ID("user-count")))
		tabs = append(tabs, tb)
	}
	for _, tb := range tabs {
		tb.waitCount("10")
		tb.waitLive()
	}
	waitSubscribers(t, srv, 10)
	// The page itself came over HTTP/2 (an open stream has no Resource
	// Timing entry until it ends); that the streams did too is what ten
	// tabs all reaching 10 shows: over HTTP/1.1 a browser holds at most
	// six connections to a host.
	if !eval[bool](tabs[9], `performance.getEntriesByType('navigation')[0].nextHopProtocol === 'h2'`) {
		t.Errorf("tab10's page did not come over HTTP/2")
	}

	// Closing three tabs: the other seven follow.
	for _, tb := range tabs[7:] {
		tb.close()
	}
	for _, tb := range tabs[:7] {
		tb.waitCount("7")
	}
	waitSubscribers(t, srv, 7)
}
