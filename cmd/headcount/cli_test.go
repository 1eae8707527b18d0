package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headcount/headcount/config"
)

// runBinary runs the built binary with args and an environment of only
// PATH and HOME, and returns its stdout, stderr and exit code.
func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = childEnv(map[string]string{"HEADCOUNT_ADDR": "127.0.0.1:0"})
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = time.Second
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("headcount %q still running after %v: it should print and exit", args, startTimeout)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// TestHelp checks that --help exits 0 and names every variable the
// configuration reads, with its default and meaning.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		stdout, stderr, code := runBinary(t, arg)
		if code != 0 || stderr != "" {
			t.Fatalf("headcount %s: exit %d, stderr %q; want 0 and nothing", arg, code, stderr)
		}
		flat := strings.Join(strings.Fields(stdout), " ")
		for _, want := range []string{"Usage:", "--version", "GET /events"} {
			if !strings.Contains(flat, want) {
				t.Errorf("headcount %s does not say %q:\n%s", arg, want, stdout)
			}
		}
		for _, v := range config.Variables() {
			if !strings.Contains(stdout, "  "+v.Name+"\n") {
				t.Errorf("headcount %s does not list %s", arg, v.Name)
			}
			for _, want := range []string{"default: " + v.Default, v.Meaning} {
				if !strings.Contains(flat, strings.Join(strings.Fields(want), " ")) {
					t.Errorf("headcount %s does not give %s's %q", arg, v.Name, want)
				}
			}
		}
	}
}

// TestVersion checks that --version exits 0 with the module version and,
// built from a git checkout, the revision of HEAD.
func TestVersion(t *testing.T) {
	stdout, stderr, code := runBinary(t, "--version")
	if code != 0 || stderr != "" {
		t.Fatalf("headcount --version: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	if !strings.HasPrefix(stdout, "headcount ") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("headcount --version = %q, want one line starting \"headcount \"", stdout)
	}
	if !strings.Contains(stdout, "(devel)") && !strings.Contains(stdout, " v") {
		t.Errorf("headcount --version = %q: no module version", stdout)
	}
	rev := headRevision(t)
	switch {
	case rev != "" && !strings.Contains(stdout, "revision "+rev):
		t.Errorf("headcount --version = %q, want the revision %s", stdout, rev)
	case rev == "" && !strings.Contains(stdout, "no VCS revision"):
		t.Errorf("headcount --version = %q, want it to say no revision was recorded", stdout)
	}
}

// headRevision is the git revision the Go toolchain stamps into a binary
// built here, or "" where it stamps none: outside a git checkout, without
// git, or in a linked worktree (whose .git is a file, which cmd/go does
// not follow).
func headRevision(t *testing.T) string {
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(strings.TrimSpace(string(root)))
	if fi, err := os.Stat(filepath.Join(dir, ".git")); err != nil || !fi.IsDir() {
		return ""
	}
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// TestBadArguments checks that anything but --help or --version is usage
// on stderr and exit 2, and that nothing is served.
func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"serve"},
		{"--helpp"},
		{"--port=8080"},
		{"--version", "--help"},
		{"-v"},
		{""},
	} {
		stdout, stderr, code := runBinary(t, args...)
		if code != 2 {
			t.Errorf("headcount %q: exit %d, want 2", args, code)
		}
		if stdout != "" {
			t.Errorf("headcount %q wrote to stdout (did it start?): %q", args, stdout)
		}
		if !strings.Contains(stderr, "Usage:") || !strings.Contains(stderr, "unexpected arguments") {
			t.Errorf("headcount %q: stderr %q lacks the error and the usage", args, stderr)
		}
	}
}
