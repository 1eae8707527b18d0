// Package testbinary builds the headcount binary for tests that run it as
// a process: with the race detector when the test binary has it (a data
// race in the child then fails the test too, and the child reuses the
// packages the test build compiled), and stamped with the VCS revision
// even where GOFLAGS turns stamping off.
package testbinary

import (
	"os"
	"os/exec"
	"runtime/debug"
)

// Build compiles the main package in dir (e.g. "." or "../cmd/headcount")
// to out, writing the compiler's output to stderr.
func Build(out, dir string) error {
	args := []string{"build", "-buildvcs=true", "-o", out}
	if RaceEnabled() {
		args = append(args, "-race")
	}
	// go test puts its own go first in PATH.
	cmd := exec.Command("go", append(args, dir)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// RaceEnabled reports whether this binary was built with -race.
func RaceEnabled() bool {
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
