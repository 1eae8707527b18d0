package static_test

import (
	"bytes"
	"github.com/headcount/headcount/internal/ci"
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"github.com/headcount/headcount/static"
)

// node finds the node binary. Without one the JavaScript checks are skipped,
// except under CI=true, where a missing node is a broken build machine.
func node(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("node")
	if err != nil {
		ci.Missing(t, "node (for the static/app.js checks)", "install Node.js 20 or newer")
	}
	return path
}

func TestEmbeddedFiles(t *testing.T) {
	for _, name := range []string{"style.css", "app.js", "favicon.svg"} {
		b, err := fs.ReadFile(static.FS, name)
		if err != nil {
			t.Errorf("static.FS lacks %s: %v", name, err)
			continue
		}
		if len(bytes.TrimSpace(b)) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
	svg, _ := fs.ReadFile(static.FS, "favicon.svg")
	if !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte(`xmlns="http://www.w3.org/2000/svg"`)) {
		t.Errorf("favicon.svg is not a standalone SVG document:\n%s", svg)
	}
}

func TestStyleSheet(t *testing.T) {
	css, err := fs.ReadFile(static.FS, "style.css")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"prefers-color-scheme: dark",
		":focus-visible",
		".dev-banner",
		"@media (min-width:",
	} {
		if !bytes.Contains(css, []byte(want)) {
			t.Errorf("style.css lacks %q", want)
		}
	}
	if open, closed := bytes.Count(css, []byte("{")), bytes.Count(css, []byte("}")); open != closed {
		t.Errorf("style.css has %d '{' but %d '}'", open, closed)
	}
	if bytes.Contains(css, []byte("@import")) || bytes.Contains(css, []byte("url(http")) {
		t.Error("style.css loads something from elsewhere; the CSP allows only 'self'")
	}
}

func TestAppScriptSyntax(t *testing.T) {
	out, err := exec.Command(node(t), "--check", "app.js").CombinedOutput()
	if err != nil {
		t.Fatalf("node --check app.js: %v\n%s", err, out)
	}
}

// TestAppScriptBehaviour runs app.js under node against fakes of the DOM,
// EventSource, fetch, timers and the clipboard (testdata/app_harness.js);
// each of the harness's scenarios is reported as a subtest.
func TestAppScriptBehaviour(t *testing.T) {
	cmd := exec.Command(node(t), "testdata/app_harness.js", "app.js")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()

	scenarios := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.SplitN(strings.TrimRight(line, "\n"), "\t", 3)
		if len(fields) < 2 {
			continue
		}
		scenarios++
		t.Run(fields[1], func(t *testing.T) {
			if fields[0] != "ok" {
				reason := "(no reason given)"
				if len(fields) == 3 {
					reason = fields[2]
				}
				t.Error(reason)
			}
		})
	}
	if scenarios == 0 {
		t.Fatalf("the harness reported no scenarios (%v)\nstdout:\n%s\nstderr:\n%s", runErr, out, stderr.String())
	}
	if runErr != nil && !t.Failed() {
		t.Fatalf("the harness failed: %v\nstderr:\n%s", runErr, stderr.String())
	}
}
