package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
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
	args := []string{"build", "-o", binary}
	if raceEnabled() {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "../cmd/headcount")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building headcount:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
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
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed, and CI must run this test (.ci/run installs it)", program)
		}
		t.Skipf("%s is not installed; %s to run this test", program, install)
	}
	return path
}

// needRedis checks that Redis answers at 127.0.0.1:6379.
func needRedis(t *testing.T) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:6379", 2*time.Second)
	if err == nil {
		conn.Close()
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("Redis does not answer at 127.0.0.1:6379, and CI must run this test: %v", err)
	}
	t.Skipf("Redis does not answer at 127.0.0.1:6379 (apt-get install redis-server): %v", err)
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// logBuffer collects a child process's output, shown when a test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a child the test started and stops.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *logBuffer
	exited chan struct{}
	err    error // Wait's result; read after exited
}

// startProcess starts argv with exactly env (plus PATH and HOME) and stops
// it with stop when the test ends, killing it if it outlasts stopTimeout.
func startProcess(t *testing.T, name string, env []string, stop syscall.Signal, argv ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(argv[0], argv[1:]...), out: new(logBuffer), exited: make(chan struct{})}
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
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it answered: %v\n%s", p.name, p.err, p.out)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %s within %v:\n%s", p.name, url, startTimeout, p.out)
}

// redisDB is the Redis database these tests share their count in; other
// packages' tests use others. Its headcount keys are removed before and
// after each test.
const redisDB = 11

// cleanRedis removes headcount's keys from redisDB, with redis-cli.
func cleanRedis(t *testing.T) {
	t.Helper()
	clean := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "redis-cli", "-h", "127.0.0.1", "-p", "6379", "-n", strconv.Itoa(redisDB),
			"--no-auth-warning", "eval", "for _,k in ipairs(redis.call('keys','headcount:*')) do redis.call('del',k) end return 0", "0").CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Logf("redis-cli: %v", err)
		} else if err != nil {
			t.Fatalf("cleaning Redis db %d: %v: %s", redisDB, err, strings.TrimSpace(string(out)))
		}
	}
	need(t, "redis-cli", "apt-get install redis-server")
	clean()
	t.Cleanup(clean)
}

// execOutput runs argv and returns its combined output.
func execOutput(ctx context.Context, argv ...string) (string, error) {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}
