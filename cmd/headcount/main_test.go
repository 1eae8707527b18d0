package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/headcount/headcount/internal/testbinary"
)

// binary is the headcount binary the process tests start, built once by
// TestMain.
var binary string

// TestMain builds the binary for the process tests, runs every test, and
// fails the package if any test leaves a goroutine behind: the server's,
// the hub's, or a test's own stream readers.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "headcount-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "headcount test:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "headcount")
	if err := testbinary.Build(binary, "."); err != nil {
		fmt.Fprintln(os.Stderr, "headcount test: building the binary:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}
