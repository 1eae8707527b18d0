package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"testing"

	"go.uber.org/goleak"
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
	if err := build(binary); err != nil {
		fmt.Fprintln(os.Stderr, "headcount test: building the binary:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// build compiles this package to out, with the race detector when the
// tests have it: the child then reuses the packages the test build
// compiled, and a data race in the real process fails the test too.
func build(out string) error {
	// -buildvcs=true: the revision --version prints is stamped even where
	// GOFLAGS turns stamping off.
	args := []string{"build", "-buildvcs=true", "-o", out}
	if raceEnabled() {
		args = append(args, "-race")
	}
	// go test puts its own go first in PATH.
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
