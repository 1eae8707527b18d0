package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: the
// in-process server's, an SSE reader's, chromedp's or one of os/exec's.
// No goroutine is ignored: every browser, tab, process and connection is
// stopped and waited for by the test that started it, and goleak's own
// retries (about a second) absorb the moments net/http and chromedp take
// to wind down after a close returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
