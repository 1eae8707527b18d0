package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Limits of a browser test.
const (
	// browserBudget bounds the life of a test's browser: if anything
	// hangs, the browser ends and every action fails, instead of the test
	// binary's timeout cutting off the whole package.
	browserBudget = 60 * time.Second
	// Window size of the browser, also that of the screenshots.
	windowWidth, windowHeight = 1000, 700
)

// browser is one headless Chromium with a fresh profile, for one test.
type browser struct {
	t         *testing.T
	exe       string // the Chromium it runs
	first     *tab   // owns the browser: its context is the browser's
	tabs      []*tab // every tab opened, closed or not
	artifacts *artifacts
}

// tab is one page target of the browser. Its console is recorded; if the
// test fails, the console log and, while the tab is open, a screenshot are
// left in the test's artifact directory.
type tab struct {
	b      *browser
	name   string
	ctx    context.Context
	cancel context.CancelFunc

	saved bool // saveArtifacts has run for it

	mu      sync.Mutex
	console []string
}

// startBrowser starts Chromium (exe, from needChromium) for t, with extra
// options on top of the usual ones, and opens its first tab; both are
// closed when the test ends. Start the server
// first: cleanups run last first, so a failing test's screenshots then
// show the page before the server stops under it.
func startBrowser(t *testing.T, exe string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Everything here is on loopback: never ask a proxy, and reach no
		// host but localhost and 127.0.0.1, so nothing leaves the machine.
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(windowWidth, windowHeight),
	)
	opts = append(opts, extra...)
	alloc, cancel := context.WithTimeout(context.Background(), browserBudget)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(alloc, opts...)
	t.Cleanup(cancelAlloc) // waits for the browser process to end
	b := &browser{t: t, exe: exe, artifacts: &artifacts{t: t}}
	b.first = b.open("tab1", alloc)
	return b
}

// newTab opens another tab in the same browser context as the first, so
// with the same cookies: what a user gets with Ctrl+T.
func (b *browser) newTab(name string) *tab {
	b.t.Helper()
	return b.open(name, b.first.ctx)
}

// newPerson opens a tab in a browser context of its own (its own
// cookies), in the same browser: another person at another computer.
func (b *browser) newPerson(name string) *tab {
	b.t.Helper()
	return b.open(name, b.first.ctx, chromedp.WithNewBrowserContext())
}

func (b *browser) open(name string, parent context.Context, opts ...chromedp.ContextOption) *tab {
	b.t.Helper()
	tb := &tab{b: b, name: name}
	tb.ctx, tb.cancel = chromedp.NewContext(parent, append(opts, chromedp.WithListener(tb.record))...)
	b.tabs = append(b.tabs, tb)
	b.t.Cleanup(tb.cancel)
	// Whichever tab's cleanup runs first saves every tab, so each is
	// pictured as it was when the test failed, before any is closed.
	b.t.Cleanup(b.saveArtifacts)
	// The first run starts the browser or opens the tab and binds it to
	// the context it gets, so it must be the tab's own context, not a
	// shorter-lived one (browserBudget bounds it).
	if err := chromedp.Do(tb.ctx); err != nil {
		b.t.Fatalf("opening %s in %s: %v", name, b.exe, err)
	}
	// A window's outer size leaves the page less room than it says; pin
	// the page's own size so screenshots come out the same everywhere.
	tb.do("sizing the page", chromedp.EmulateViewport(windowWidth, windowHeight))
	return tb
}

// close closes the tab, as a user closing it would, and waits until it is
// gone.
func (tb *tab) close() { tb.cancel() }

// record keeps what the page writes to its console, and uncaught
// exceptions and browser log entries (failed requests), in order. It runs
// in chromedp's event loop, so it only formats and appends.
func (tb *tab) record(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		args := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			var str string
			switch {
			case a.Type == runtime.RemoteObjectTypeString && json.Unmarshal(a.Value, &str) == nil:
				args = append(args, str)
			case len(a.Value) > 0:
				args = append(args, string(a.Value))
			case a.UnserializableValue != "":
				args = append(args, string(a.UnserializableValue))
			default:
				args = append(args, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = "exception: " + d.Text
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
		line += fmt.Sprintf(" (%s:%d:%d)", d.URL, d.LineNumber+1, d.ColumnNumber+1)
	case *log.EventEntryAdded:
		e := ev.Entry
		line = fmt.Sprintf("log %s %s: %s %s", e.Level, e.Source, e.Text, e.URL)
	default:
		return
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.console = append(tb.console, time.Now().Format("15:04:05.000")+" "+line)
}

// consoleLog returns what record kept.
func (tb *tab) consoleLog() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return strings.Join(tb.console, "\n") + "\n"
}

// saveArtifacts leaves, if the test has failed, the console log of every
// tab and a screenshot of every open one in the artifact directory. It
// runs on the test's goroutine (from cleanups), once per tab.
func (b *browser) saveArtifacts() {
	if !b.t.Failed() {
		return
	}
	for _, tb := range b.tabs {
		if !tb.saved {
			tb.saved = true
			tb.saveArtifacts(b.artifacts.Dir())
		}
	}
}

// saveArtifacts writes the tab's console log and, if it is open, a
// screenshot into dir.
func (tb *tab) saveArtifacts(dir string) {
	t := tb.b.t
	if dir == "" {
		return
	}
	var saved []string
	if err := os.WriteFile(filepath.Join(dir, tb.name+"-console.log"), []byte(tb.consoleLog()), 0o644); err != nil {
		t.Errorf("saving %s's console: %v", tb.name, err)
	} else {
		saved = append(saved, tb.name+"-console.log")
	}
	t.Logf("%s's console:\n%s", tb.name, tb.consoleLog())
	if tb.ctx.Err() != nil {
		t.Logf("%s was closed; saved %s in %s", tb.name, strings.Join(saved, " and "), dir)
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	url, _ := chromedp.Run(ctx, chromedp.Location())
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, tb.name+".png"), png, 0o644)
	}
	if err != nil {
		t.Errorf("saving a screenshot of %s: %v", tb.name, err)
	} else {
		saved = append(saved, tb.name+".png")
	}
	t.Logf("%s was at %s; saved %s in %s", tb.name, url, strings.Join(saved, " and "), dir)
}

// do runs actions in the tab within waitTimeout, failing the test with
// step (what a user would be doing) if they do not all succeed.
func (tb *tab) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	t := tb.b.t
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %s: %v", tb.name, step, err)
	}
}

// text returns the text of the element with the given id.
func (tb *tab) text(id string) string {
	t := tb.b.t
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("%s: reading #%s: %v", tb.name, id, err)
	}
	return strings.TrimSpace(s)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	t := tb.b.t
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: evaluating %s: %v", tb.name, expr, err)
	}
	return v
}

// waitUntil waits, in the page, for the JavaScript function pred to return
// true when called with args; describe says what the page shows instead if
// it never does.
func (tb *tab) waitUntil(what, pred, describe string, args ...any) {
	t := tb.b.t
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.PollFunction[chromedp.Void](pred,
		chromedp.WithPollingArgs(args...),
		chromedp.WithPollingInterval(20*time.Millisecond),
		chromedp.WithPollingTimeout(waitTimeout),
	))
	if err == nil {
		return
	}
	if errors.Is(err, chromedp.ErrPollingTimeout) {
		err = fmt.Errorf("not so within %v", waitTimeout)
	}
	t.Fatalf("%s: waiting until %s: %v; the page shows %s", tb.name, what, err, eval[string](tb, describe))
}

// waitCount waits until the page's live count, #user-count, reads want.
func (tb *tab) waitCount(want string) {
	tb.b.t.Helper()
	tb.waitUntil("#user-count reads "+want,
		`(want) => document.getElementById('user-count')?.textContent.trim() === want`,
		`JSON.stringify({count: document.getElementById('user-count')?.textContent ?? null, label: document.getElementById('user-count-label')?.textContent ?? null, state: document.getElementById('connection-state')?.dataset.state ?? null})`,
		want)
}

// waitLive waits until the page says its stream is live.
func (tb *tab) waitLive() {
	tb.b.t.Helper()
	tb.waitUntil("#connection-state is live",
		`() => document.getElementById('connection-state')?.dataset.state === 'live'`,
		`JSON.stringify(document.getElementById('connection-state')?.outerHTML ?? null)`)
}

// screenshot waits for the page to finish loading (its images and fonts
// too) and writes what the tab shows to path as a PNG.
func (tb *tab) screenshot(path string) {
	t := tb.b.t
	t.Helper()
	tb.waitUntil("the page has loaded its images and fonts",
		`() => document.readyState === 'complete' && document.fonts.status === 'loaded' && [...document.images].every((img) => img.complete && img.naturalWidth > 0)`,
		`JSON.stringify({ready: document.readyState, fonts: document.fonts.status, images: [...document.images].map((img) => img.src + (img.complete ? ' loaded' : ' loading'))})`)
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("%s: taking a screenshot: %v", tb.name, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
