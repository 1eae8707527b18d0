// Package ci holds the suite's one rule for what a test needs from the
// machine (a tool, a local Redis): without it the test skips, saying how
// to get it, except under CI, where .ci/run installs and starts
// everything and a missing piece is a broken build, so the test fails.
package ci

import (
	"os"
	"strconv"
	"testing"
)

// Enabled reports whether the tests run under CI: CI set to a true value
// (true, 1, ...).
func Enabled() bool {
	on, _ := strconv.ParseBool(os.Getenv("CI"))
	return on
}

// Missing stops t for want of what: a failure under CI, else a skip. how
// says how to get it (an install or start command).
func Missing(t testing.TB, what, how string) {
	t.Helper()
	if Enabled() {
		t.Fatalf("%s is missing, and CI requires it (%s)", what, how)
	}
	t.Skipf("%s is missing; to run this test: %s", what, how)
}
