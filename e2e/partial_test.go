package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/headcount/headcount/internal/redistest"
	"github.com/headcount/headcount/internal/testserver"
	"github.com/headcount/headcount/stream/redis"
)

// TestBrowserSaysThePartialCount: a signed-in page on an instance whose
// Redis stops answering says, in words, that its count is partial (while
// /readyz is 503), keeps its stream, and says "Live" again once Redis
// answers.
func TestBrowserSaysThePartialCount(t *testing.T) {
	t.Parallel()
	exe := needChromium(t)
	rs := redistest.Start(t)
	proxy := redistest.NewProxy(t, rs.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counter, err := redis.New(ctx, "redis://"+proxy.Addr(), redis.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t, map[string]string{"HEADCOUNT_ADDR": "127.0.0.1:0", "HEADCOUNT_SESSION_SECRET": randomSecret(t)}, testserver.Options{Counter: counter})
	b := startBrowser(t, exe)
	tab1 := b.first
	tab1.do("signing in", chromedp.Navigate(srv.URL()),
		chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), "ada"),
		chromedp.Click(chromedp.ID("dev-submit")),
		chromedp.WaitVisible(chromedp.ID("user-name")))
	tab1.waitCount("1")
	tab1.waitLive()

	proxy.SetFrozen(true)
	tab1.waitUntil("#connection-state says the count is partial",
		`() => { const s = document.getElementById('connection-state'); return s?.dataset.state === 'partial' && /partial/.test(s.textContent) }`,
		`JSON.stringify({state: document.getElementById('connection-state')?.dataset.state, text: document.getElementById('connection-state')?.textContent})`)
	if got := tab1.text("user-count"); got != "1" {
		t.Errorf("#user-count reads %q during the outage, want this instance's 1", got)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(srv.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d while the page says partial, want 503", resp.StatusCode)
	}

	proxy.SetFrozen(false)
	tab1.waitLive()
	if got := tab1.text("connection-state"); got != "Live" {
		t.Errorf("#connection-state reads %q after the outage, want Live", got)
	}
}
