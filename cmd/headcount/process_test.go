//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headcount/headcount/config"
)

// childEnv is the whole environment of a child process: PATH and HOME,
// plus vars, so nothing from the machine's environment leaks in.
func childEnv(vars map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// process is the headcount binary running as a child of the test.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr *logBuffer
	exited         chan struct{} // closed when the process has exited
	err            error         // cmd.Wait's result; read only after exited
	addr, url      string        // from the "headcount listening" line
}

// startProcess starts the binary with exactly vars (on a free loopback
// port unless vars say otherwise) and waits until it listens. With a
// wrapper, the binary's path is the wrapper's last argument.
func startProcess(t *testing.T, vars map[string]string, wrapper ...string) *process {
	t.Helper()
	vars = maps.Clone(vars)
	if vars == nil {
		vars = map[string]string{}
	}
	if vars["HEADCOUNT_ADDR"] == "" {
		vars["HEADCOUNT_ADDR"] = "127.0.0.1:0"
	}
	argv := slices.Concat(wrapper, []string{binary})
	p := &process{cmd: exec.Command(argv[0], argv[1:]...), stdout: new(logBuffer), stderr: new(logBuffer), exited: make(chan struct{})}
	p.cmd.Env = childEnv(vars)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})

	rec := awaitListening(t, p.stdout, p.exited, func(stopped bool) string {
		out := fmt.Sprintf("stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		if stopped {
			out = fmt.Sprintf("exit: %v; %s", p.err, out)
		}
		return out
	})
	p.addr, p.url = rec["addr"], rec["url"]
	return p
}

// TestProcessRefusesBadEnvironment checks the operator's view of a bad
// value: a non-zero exit and exactly one line on stderr naming the
// variable.
func TestProcessRefusesBadEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		mention string // what the one line must contain
		nofile  int    // an open-file limit to run under, if not 0
	}{
		{"unparsable heartbeat", map[string]string{"HEADCOUNT_HEARTBEAT": "soon"}, "HEADCOUNT_HEARTBEAT", 0},
		{"short secret with GitHub", map[string]string{"GITHUB_KEY": "id", "GITHUB_SECRET": "s", "HEADCOUNT_SESSION_SECRET": "short"}, "HEADCOUNT_SESSION_SECRET", 0},
		{"dev mode on every interface", map[string]string{"HEADCOUNT_ADDR": "0.0.0.0:0"}, "HEADCOUNT_DEV_LOGIN", 0},
		{"Redis without a shared secret", map[string]string{"HEADCOUNT_REDIS_URL": "redis://127.0.0.1:6379/0"}, "HEADCOUNT_SESSION_SECRET", 0},
		// Taken silently once, it wedged the server at the limit.
		{"more streams than descriptors", map[string]string{"HEADCOUNT_MAX_STREAMS": "1000"},
			fmt.Sprintf("HEADCOUNT_MAX_STREAMS: 1000 is more than the open-file limit (300) allows; at most %d", config.StreamLimitFor(300)), 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"HEADCOUNT_ADDR": "127.0.0.1:0"}
			maps.Copy(vars, tc.vars)
			ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary)
			if tc.nofile > 0 {
				cmd = exec.CommandContext(ctx, "/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0"`, tc.nofile), binary)
			}
			cmd.Env = childEnv(vars)
			var stdout, stderr logBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("headcount still running after %v: it should have refused to start; stdout:\n%s", startTimeout, &stdout)
			}
			var exit *exec.ExitError
			// 1, not 2: exit 2 is for a bad command line (TestBadArguments).
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("headcount exited with %v, want exit code 1", err)
			}
			out := stderr.String()
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
				t.Errorf("stderr is not exactly one line: %q", out)
			}
			if !strings.Contains(out, tc.mention) {
				t.Errorf("stderr %q does not name %s", out, tc.mention)
			}
		})
	}
}

// TestProcessStopsOnSignal checks that SIGTERM and SIGINT with streams
// open end every stream and exit 0 within SPEC's five seconds.
func TestProcessStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startProcess(t, nil)
			c := newClient(t, p.addr)
			var streams []*sseStream
			var token string
			for _, login := range []string{"ann", "bob"} {
				token = signIn(t, c, p.url, login).token
				for range 3 {
					streams = append(streams, openStream(t, c, p.url, token))
				}
			}
			if n := count(t, c, p.url, token); n != len(streams) {
				t.Fatalf("GET /api/count = %d with %d streams open", n, len(streams))
			}

			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(stopLimit)
			select {
			case <-p.exited:
			case <-time.After(stopLimit):
				t.Fatalf("still running %v after %v; stdout:\n%s", stopLimit, sig, p.stdout)
			}
			if p.err != nil {
				t.Errorf("after %v headcount exited with %v, want 0; stderr:\n%s", sig, p.err, p.stderr)
			}
			waitEnded(t, streams, deadline)
			if _, ok := p.stdout.find("stopped"); !ok {
				t.Errorf("no \"stopped\" line; stdout:\n%s", p.stdout)
			}
			if s := p.stderr.String(); s != "" {
				t.Errorf("stderr after a clean stop: %q", s)
			}
		})
	}
}

// lowSoftLimit is the soft open-file limit TestProcessRaisesOpenFileLimit
// starts the process with.
const lowSoftLimit = 256

// TestProcessRaisesOpenFileLimit checks, from the outside, that the
// process runs with its soft open-file limit at the hard limit, and that
// it sized its default stream limit from that.
func TestProcessRaisesOpenFileLimit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/<pid>/limits, which only Linux has")
	}
	// Start it with a soft limit well below the hard one, as many
	// machines do, so there is something to raise.
	var wrapper []string
	var own syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own); err == nil && own.Max > lowSoftLimit {
		wrapper = []string{"/bin/sh", "-c", fmt.Sprintf(`ulimit -S -n %d && exec "$0"`, lowSoftLimit)}
	}
	p := startProcess(t, nil, wrapper...)
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var soft, hard string
	for line := range strings.SplitSeq(string(limits), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) >= 2 {
				soft, hard = f[0], f[1]
			}
		}
	}
	if soft == "" {
		t.Fatalf("no \"Max open files\" line in /proc/%d/limits:\n%s", p.cmd.Process.Pid, limits)
	}
	if soft != hard {
		t.Errorf("Max open files: soft %s, hard %s; want the soft limit raised to the hard one", soft, hard)
	}

	n := uint64(math.MaxUint64) // "unlimited"
	if hard != "unlimited" {
		if n, err = strconv.ParseUint(hard, 10, 64); err != nil {
			t.Fatalf("Max open files: hard limit %q: %v", hard, err)
		}
	}
	rec, _ := p.stdout.find("headcount listening")
	if got := rec["open_file_limit"]; got != strconv.FormatUint(n, 10) {
		t.Errorf("listening line says open_file_limit=%s, want the hard limit %d", got, n)
	}
	if got, want := rec["max_streams"], strconv.Itoa(config.StreamLimitFor(n)); got != want {
		t.Errorf("listening line says max_streams=%s, want %s for %d open files", got, want, n)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(stopLimit):
		t.Fatalf("still running %v after SIGTERM", stopLimit)
	}
	if p.err != nil {
		t.Errorf("exited with %v after SIGTERM, want 0", p.err)
	}
}

// TestProcessAtTheDescriptorLimit runs the binary with few descriptors and
// fills its default stream limit: the next stream is refused with 503
// while pages, health checks and metrics still answer, where a plain
// server would have run out of descriptors and stopped accepting at all.
func TestProcessAtTheDescriptorLimit(t *testing.T) {
	const nofile = 300 // soft and hard
	limit := config.StreamLimitFor(nofile)
	p := startProcess(t, map[string]string{"HEADCOUNT_MAX_STREAMS_PER_USER": "0"},
		"/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0"`, nofile))
	rec, _ := p.stdout.find("headcount listening")
	if rec["max_streams"] != strconv.Itoa(limit) {
		t.Fatalf("max_streams=%s, want %d for %d open files", rec["max_streams"], limit, nofile)
	}
	c := newClient(t, p.addr)
	s := signIn(t, c, p.url, "ada")
	for i := range limit {
		if st := openStream(t, c, p.url, s.token); st.first != i+1 {
			t.Fatalf("stream %d's first event says %d", i+1, st.first)
		}
	}

	req := newRequest(t, http.MethodGet, p.url+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, body := fetch(t, c, req)
	expect(t, resp, body, http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 at the stream limit without Retry-After")
	}
	for _, path := range []string{"/healthz", "/", "/metrics"} {
		resp, body := fetch(t, c, newRequest(t, http.MethodGet, p.url+path, nil))
		expect(t, resp, body, http.StatusOK)
	}
	if got := count(t, c, p.url, s.token); got != limit {
		t.Errorf("count %d after a refusal, want %d", got, limit)
	}
}

// TestRunUnreachableRedisStopsTheStart checks that a Redis that does not
// answer stops run with an error naming HEADCOUNT_REDIS_URL, and that the
// port run had already taken is free again.
func TestRunUnreachableRedisStopsTheStart(t *testing.T) {
	addr := freeAddr(t) // held for this test alone (a :0 port, closed, may be taken meanwhile)
	in := launch(t, map[string]string{
		"HEADCOUNT_ADDR":           addr,
		"HEADCOUNT_REDIS_URL":      "redis://127.0.0.1:1/0",
		"HEADCOUNT_SESSION_SECRET": strings.Repeat("k", 32),
	})
	err := in.wait(t, startTimeout)
	if err == nil || !strings.HasPrefix(err.Error(), "HEADCOUNT_REDIS_URL: ") {
		t.Fatalf("run with an unreachable Redis returned %v, want an error naming HEADCOUNT_REDIS_URL", err)
	}
	if _, ok := in.log.find("headcount listening"); ok {
		t.Errorf("run logged that it listens without its count store; log:\n%s", in.log)
	}
	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port run had taken is still held: %v", err)
	}
	again.Close()
}

// TestProcessGCPercent checks the garbage collector's target the binary
// runs with, as /metrics reports it: gcPercent by default, and GOGC's
// when the operator sets it.
func TestProcessGCPercent(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want int
	}{
		{nil, gcPercent},
		{map[string]string{"GOGC": "100"}, 100},
	} {
		p := startProcess(t, tc.vars)
		resp, body := fetch(t, newClient(t, p.addr), newRequest(t, http.MethodGet, p.url+"/metrics", nil))
		expect(t, resp, body, http.StatusOK)
		if want := fmt.Sprintf("\ngo_gc_gogc_percent %d\n", tc.want); !strings.Contains(body, want) {
			t.Errorf("with %v, /metrics lacks %q", tc.vars, strings.TrimSpace(want))
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(stopLimit):
			t.Fatalf("with %v, still running %v after SIGTERM", tc.vars, stopLimit)
		}
	}
}
