package firstrun

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// downloadBudget is the most the README's two commands may fetch on a
// clean module cache (module zips, the bulk of it). Measured at 27 MB
// with Task v3.35.1; Task v3.54 made it 235 MB.
const downloadBudget = 40 << 20

// heavy are module path prefixes that have no business in headcount's
// build: they came in once through the task runner's remote Taskfiles.
var heavy = []string{
	"cloud.google.com/",
	"github.com/aws/",
	"github.com/hashicorp/go-getter",
	"github.com/go-git/",
	"google.golang.org/api",
	"google.golang.org/grpc",
	"go.opentelemetry.io/",
}

// TestFirstRunDownloadsLittle sums the module zips needed to build every
// package of the module with its tests and every tool of go.mod: what `go
// tool task run` and `go tool task test` download on a clean machine.
func TestFirstRunDownloadsLittle(t *testing.T) {
	root := moduleRoot(t)
	var mod struct{ Tool []struct{ Path string } }
	if err := json.Unmarshal([]byte(goCmd(t, root, "mod", "edit", "-json")), &mod); err != nil {
		t.Fatal(err)
	}
	args := []string{"list", "-deps", "-test", "-f", `{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}}{{end}}{{end}}`, "./..."}
	for _, tool := range mod.Tool {
		args = append(args, tool.Path)
	}
	if len(mod.Tool) == 0 {
		t.Fatal("go.mod has no tool directive: `go tool task` would not work")
	}
	modules := map[string]bool{}
	for _, m := range strings.Fields(goCmd(t, root, args...)) {
		modules[m] = true
	}
	cache := strings.TrimSpace(goCmd(t, root, "env", "GOMODCACHE"))
	var total int64
	for m := range modules {
		path, version, _ := strings.Cut(m, "@")
		for _, h := range heavy {
			if strings.HasPrefix(path, h) {
				t.Errorf("%s is built by the suite or a tool: it is not headcount's (check go.mod's tool directive)", m)
			}
		}
		fi, err := os.Stat(filepath.Join(cache, "cache", "download", escape(path), "@v", version+".zip"))
		if err != nil {
			t.Fatalf("module %s is not in the module cache: %v", m, err)
		}
		total += fi.Size()
	}
	t.Logf("%d modules, %.1f MB of module zips", len(modules), float64(total)/(1<<20))
	if total > downloadBudget {
		t.Errorf("the first run downloads %.1f MB of modules, over the %d MB budget (see the README's opening paragraph)", float64(total)/(1<<20), downloadBudget>>20)
	}
}

// TestReadmeStatesTheGoVersion keeps the README's Go version in step with
// go.mod's go line.
func TestReadmeStatesTheGoVersion(t *testing.T) {
	root := moduleRoot(t)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Go " + string(m[1]); !bytes.Contains(readme, []byte(want)) {
		t.Errorf("README does not say %q, the version go.mod needs", want)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	return filepath.Dir(strings.TrimSpace(goCmd(t, ".", "env", "GOMOD")))
}

func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// escape is the module cache's spelling of a module path: each capital
// letter becomes '!' and its lower case.
func escape(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
