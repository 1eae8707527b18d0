package e2e

import (
	"flag"
	"github.com/headcount/headcount/internal/ci"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// needTool returns the path of the named executable, or stops the test.
func needTool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		ci.Missing(t, name, install)
	}
	return path
}

// needChromium returns the path of a Chromium or Chrome, or stops the test.
func needChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	ci.Missing(t, "chromium", "apt-get install -y chromium")
	return ""
}

// needNodeModules stops the test unless `npm ci` has installed e2e's
// node_modules (tests run in the package directory).
func needNodeModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("node_modules", "eventsource", "package.json")); err != nil {
		ci.Missing(t, "e2e/node_modules (the npm eventsource package)", "cd e2e && npm ci")
	}
}

// artifacts is where a failing test leaves what explains the failure
// (screenshots, console logs), made on first use.
type artifacts struct {
	t    *testing.T
	once sync.Once
	dir  string
}

// Dir returns the directory, creating it the first time. With -artifacts
// it is the test's t.ArtifactDir, kept under the output directory; without,
// t.ArtifactDir would be deleted with the test, so a directory under
// os.TempDir is made instead and left behind for the reader.
func (a *artifacts) Dir() string {
	a.once.Do(func() {
		if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
			a.dir = a.t.ArtifactDir()
			return
		}
		dir, err := os.MkdirTemp("", "headcount-e2e-"+fileName(a.t.Name())+"-")
		if err != nil {
			a.t.Errorf("making an artifact directory: %v", err)
			return
		}
		a.dir = dir
	})
	return a.dir
}

// fileName turns a test name into something safe in a file name.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, s)
}
