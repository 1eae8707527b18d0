package stream

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// hub's own, r3labs' stream and watcher goroutines, or the test's readers.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
