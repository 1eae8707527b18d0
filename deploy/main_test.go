package deploy

import (
	"context"
	"fmt"
	"github.com/headcount/headcount/internal/ci"
	"github.com/headcount/headcount/internal/poll"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/headcount/headcount/internal/logbuf"
	"github.com/headcount/headcount/internal/testbinary"
)

// Time limits. Each bounds a wait for a condition; none is a guess at how
// long something takes.
const (
	startTimeout = 15 * time.Second
	waitTimeout  = 15 * time.Second
	stopTimeout  = 10 * time.Second
)

// binary is the headcount binary the tests start, built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "headcount-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "headcount")
	if err := testbinary.Build(binary, "../cmd/headcount"); err != nil {
		fmt.Fprintln(os.Stderr, "building headcount:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// need finds a program the test cannot do without: missing, the test
// skips with how to install it, or fails under CI=true, where .ci/run has
// installed it.
func need(t *testing.T, program, install string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, program)); serr == nil {
				return filepath.Join(dir, program)
			}
		}
		ci.Missing(t, program, install)
	}
	return path
}

// process is a child the test started and stops.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *logbuf.Buffer
	exited chan struct{}
	err    error // Wait's result; read after exited
}

// startProcess starts argv with exactly env (plus PATH and HOME) and stops
// it with stop when the test ends, killing it if it outlasts stopTimeout.
func startProcess(t *testing.T, name string, env []string, stop syscall.Signal, argv ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(argv[0], argv[1:]...), out: new(logbuf.Buffer), exited: make(chan struct{})}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(stop)
		select {
		case <-p.exited:
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("%s did not stop within %v of %v", name, stopTimeout, stop)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out)
		}
	})
	return p
}

// startHeadcount starts the headcount binary on addr with vars and waits
// until it answers /healthz.
func startHeadcount(t *testing.T, name, addr string, vars map[string]string) *process {
	t.Helper()
	env := []string{"HEADCOUNT_ADDR=" + addr}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	p := startProcess(t, name, env, syscall.SIGTERM, binary)
	waitFor(t, p, "http://"+addr+"/healthz")
	return p
}

// waitFor polls url until it answers (any status) or p exits.
func waitFor(t *testing.T, p *process, url string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	p.await(t, "answer "+url, func() bool {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
}

// waitListening polls until something accepts connections on port of
// 127.0.0.1 or p exits.
func waitListening(t *testing.T, p *process, port int) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p.await(t, "listen on "+addr, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// await polls ready until it holds, failing the test if p exits first
// or startTimeout passes.
func (p *process) await(t *testing.T, what string, ready func() bool) {
	t.Helper()
	exited := false
	err := poll.Until(startTimeout, func() bool {
		select {
		case <-p.exited:
			exited = true
			return true
		default:
		}
		return ready()
	})
	switch {
	case exited:
		t.Fatalf("%s exited before it could %s: %v\n%s", p.name, what, p.err, p.out)
	case err != nil:
		t.Fatalf("%s did not %s within %v:\n%s", p.name, what, startTimeout, p.out)
	}
}

// execOutput runs argv and returns its combined output.
func execOutput(ctx context.Context, argv ...string) (string, error) {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}
