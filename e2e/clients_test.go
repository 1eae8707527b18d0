package e2e

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/internal/testserver"
)

// TestCurlFollowsTheCount holds the stream with the real curl binary, as
// the README tells people to, and reads what curl prints: the first
// "user count" event counts curl itself, another stream joining makes it
// 2, that stream leaving makes it 1 again; and when curl quits, the server
// lets go of its stream.
func TestCurlFollowsTheCount(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "apt-get install -y curl")
	srv := startDevServer(t)
	token := signInForToken(t, srv, "curl-user")

	p := newStreamClient(t, "curl", sseCounts(), false, curl, "-sN", "-H", "Authorization: Bearer "+token, srv.URL()+"/events")
	p.start(t)
	followJoinAndLeave(t, srv, token, p)
	p.stop()
	waitSubscribers(t, srv, 0)
}

// TestEventSourceClientFollowsTheCount does the same with a third-party
// EventSource implementation: Node running the npm eventsource package
// (sse_client.mjs), which prints the data of each "user count" event.
func TestEventSourceClientFollowsTheCount(t *testing.T) {
	t.Parallel()
	node := needTool(t, "node", "apt-get install -y nodejs npm")
	needNodeModules(t)
	srv := startDevServer(t)
	token := signInForToken(t, srv, "node-user")

	p := newStreamClient(t, "node", plainLines, true, node, "sse_client.mjs", srv.URL()+"/events")
	// The token goes in the environment, not the command line, where any
	// user of the machine could read it.
	p.cmd.Env = append(os.Environ(), "HEADCOUNT_TOKEN="+token)
	p.start(t)
	followJoinAndLeave(t, srv, token, p)
	p.stop()
	if err := p.waitErr; err != nil {
		t.Errorf("node exited with %v; stderr:\n%s", err, p.stderr)
	}
	waitSubscribers(t, srv, 0)
}

// followJoinAndLeave checks that the client p sees its own stream counted,
// then a second stream come and go.
func followJoinAndLeave(t *testing.T, srv *testserver.Server, token string, p *client) {
	t.Helper()
	p.want(t, "1")
	waitSubscribers(t, srv, 1)

	second, err := ssetest.Open(t, newClient(t), srv.URL()+"/events", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("opening a second stream: %v", err)
	}
	if err := second.WaitLast(waitTimeout, "2"); err != nil {
		t.Fatalf("the second stream: %v", err)
	}
	p.want(t, "2")

	second.Close()
	p.want(t, "1")
	waitSubscribers(t, srv, 1)
}

// A parser turns a client's output, line by line, into the counts it saw.
type parser func(line string) (count string, ok bool)

// plainLines is the parser of a client that prints one count a line.
func plainLines(line string) (string, bool) { return line, true }

// sseCounts returns a parser of a raw event stream (what curl -N prints)
// that gives the data of every "user count" event.
func sseCounts() parser {
	var p ssetest.Parser
	return func(line string) (string, bool) {
		ev, ok := p.Line(line)
		return ev.Data, ok && ev.Event == "user count"
	}
}

// client is a command-line stream client run as a child process, its
// standard output read as it comes.
type client struct {
	name     string
	cmd      *exec.Cmd
	parse    parser
	graceful bool // the process ends by itself when its input closes
	stdin    io.WriteCloser
	stdout   io.ReadCloser
	stderr   *logBuffer
	cancel   context.CancelFunc

	read     chan struct{} // closed once stdout is drained
	stopOnce sync.Once
	waitErr  error // how the process ended, once stopped

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when output arrives
	lines   []string      // every line printed, for failure messages
	counts  []string
	eof     bool
	next    int // the next count want checks
}

// newStreamClient prepares the program at path; start runs it. It reads
// its standard input from a pipe that stop closes: a graceful client
// (sse_client.mjs) then leaves by itself, any other is killed. The process
// is stopped when the test ends at the latest.
func newStreamClient(t *testing.T, name string, parse parser, graceful bool, path string, args ...string) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &client{
		name:     name,
		cmd:      exec.CommandContext(ctx, path, args...),
		parse:    parse,
		graceful: graceful,
		stderr:   &logBuffer{},
		cancel:   cancel,
		read:     make(chan struct{}),
		changed:  make(chan struct{}),
	}
	p.cmd.Stderr = p.stderr
	// Bound how long Wait waits for the output once the process is gone.
	p.cmd.WaitDelay = closeTimeout
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if p.stdout, err = p.cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s printed:\n%s\n%s's stderr:\n%s", p.name, p.transcript(), p.name, p.stderr)
		}
	})
	return p
}

// start runs the process and reads its output in the background.
func (p *client) start(t *testing.T) {
	t.Helper()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	go p.readOutput()
}

func (p *client) readOutput() {
	defer close(p.read)
	sc := bufio.NewScanner(p.stdout)
	for sc.Scan() {
		line := sc.Text()
		count, ok := p.parse(line)
		p.update(func() {
			p.lines = append(p.lines, line)
			if ok {
				p.counts = append(p.counts, count)
			}
		})
	}
	p.update(func() { p.eof = true })
}

func (p *client) update(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
	close(p.changed)
	p.changed = make(chan struct{})
}

// want waits for the next count the client prints and fails the test
// unless it is count.
func (p *client) want(t *testing.T, count string) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		got, have, eof, changed := "", p.next < len(p.counts), p.eof, p.changed
		if have {
			got = p.counts[p.next]
			p.next++
		}
		p.mu.Unlock()
		switch {
		case have && got == count:
			return
		case have:
			t.Fatalf("%s saw count %q, want %q next; it printed:\n%s", p.name, got, count, p.transcript())
		case eof:
			t.Fatalf("%s stopped before printing count %q; it printed:\n%s\nstderr:\n%s", p.name, count, p.transcript(), p.stderr)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s printed no count %q within %v; it printed:\n%s\nstderr:\n%s", p.name, count, waitTimeout, p.transcript(), p.stderr)
		}
	}
}

// transcript is everything the client printed so far.
func (p *client) transcript() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// stop ends the client and waits for it: it closes the client's input,
// kills it unless it is graceful, else gives it closeTimeout to leave by
// itself before killing it. It returns at once if the client never ran.
func (p *client) stop() {
	p.stopOnce.Do(func() {
		defer p.cancel()
		p.stdin.Close()
		if p.cmd.Process == nil {
			return
		}
		if !p.graceful {
			p.cancel()
		}
		deadline := time.NewTimer(closeTimeout)
		defer deadline.Stop()
		select {
		case <-p.read:
		case <-deadline.C:
			p.cancel()
			<-p.read
		}
		p.waitErr = p.cmd.Wait()
		var exit *exec.ExitError
		if !p.graceful && errors.As(p.waitErr, &exit) {
			p.waitErr = nil // killed on purpose
		}
	})
}
