package e2e

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/logbuf"
	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/internal/testserver"
)

// TestCurlFollowsTheCount holds the stream with the real curl binary, as
// the README tells people to, and reads what curl prints: the first
// "user count" event counts curl itself, the "people count" follows;
// another stream joining makes it 2, that stream leaving makes it 1 again;
// another person coming and going is announced in "user" events; and
// when curl quits, the server lets go of its stream.
func TestCurlFollowsTheCount(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "apt-get install -y curl")
	srv := startDevServer(t)
	token := signInForToken(t, srv, "curl-user")

	p := newStreamClient(t, "curl", sseEvents(), false, curl, "-sN", "-H", "Authorization: Bearer "+token, srv.URL()+"/events")
	p.start(t)
	followJoinAndLeave(t, srv, token, p)
	p.stop()
	waitSubscribers(t, srv, 0)
}

// TestEventSourceClientFollowsTheCount does the same with a third-party
// EventSource implementation: Node running the npm eventsource package
// (sse_client.mjs), which prints each "user count", "people count" and
// "user" event.
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

// followJoinAndLeave checks that the client p sees its own stream
// counted (the user count, then the people count), then a second stream of
// the same person come and go (the user count only), then another person
// come and go (both counts and a user event each way).
func followJoinAndLeave(t *testing.T, srv *testserver.Server, token string, p *client) {
	t.Helper()
	p.want(t, "user count: 1")
	p.want(t, "people count: 1")
	waitSubscribers(t, srv, 1)

	second, err := ssetest.Open(t, newClient(t), srv.URL()+"/events", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("opening a second stream: %v", err)
	}
	if err := second.WaitLast(waitTimeout, "2"); err != nil {
		t.Fatalf("the second stream: %v", err)
	}
	p.want(t, "user count: 2")
	second.Close()
	p.want(t, "user count: 1")
	waitSubscribers(t, srv, 1)

	other, err := ssetest.Open(t, newClient(t), srv.URL()+"/events", http.Header{"Authorization": {"Bearer " + signInForToken(t, srv, "ada")}})
	if err != nil {
		t.Fatalf("opening ada's stream: %v", err)
	}
	avatar := srv.URL() + "/dev/github/avatars/ada.svg"
	p.wantAll(t, "user count: 2", "people count: 2",
		`user: {"login":"ada","name":"ada","avatar_url":"`+avatar+`","connected":true,"user_count":2,"people_count":2}`)
	other.Close()
	// The departure waits out the leave grace; the user count does not.
	p.want(t, "user count: 1")
	p.wantAll(t, "people count: 1",
		`user: {"login":"ada","name":"ada","avatar_url":"`+avatar+`","connected":false,"user_count":1,"people_count":1}`)
	waitSubscribers(t, srv, 1)
}

// A parser turns a client's output, line by line, into the events it saw,
// each as "<event name>: <data>".
type parser func(line string) (event string, ok bool)

// plainLines is the parser of a client that prints one event a line.
func plainLines(line string) (string, bool) { return line, true }

// sseEvents returns a parser of a raw event stream (what curl -N prints).
func sseEvents() parser {
	var p ssetest.Parser
	return func(line string) (string, bool) {
		ev, ok := p.Line(line)
		return ev.Event + ": " + ev.Data, ok
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
	stderr   *logbuf.Buffer
	cancel   context.CancelFunc

	read     chan struct{} // closed once stdout is drained
	stopOnce sync.Once
	waitErr  error // how the process ended, once stopped

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when output arrives
	lines   []string      // every line printed, for failure messages
	events  []string
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
		stderr:   &logbuf.Buffer{},
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
		event, ok := p.parse(line)
		p.update(func() {
			p.lines = append(p.lines, line)
			if ok {
				p.events = append(p.events, event)
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

// want waits for the next event the client prints and fails the test
// unless it is event.
func (p *client) want(t *testing.T, event string) {
	t.Helper()
	p.wantAll(t, event)
}

// wantAll waits for the next len(events) events the client prints and
// fails the test unless they are events, in any order (one cycle of the
// server may make them in another order than the next).
func (p *client) wantAll(t *testing.T, events ...string) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	missing := slices.Clone(events)
	for len(missing) > 0 {
		p.mu.Lock()
		got, have, eof, changed := "", p.next < len(p.events), p.eof, p.changed
		if have {
			got = p.events[p.next]
			p.next++
		}
		p.mu.Unlock()
		if have {
			i := slices.Index(missing, got)
			if i < 0 {
				t.Fatalf("%s saw %q, want one of %q next; it printed:\n%s", p.name, got, missing, p.transcript())
			}
			missing = slices.Delete(missing, i, i+1)
			continue
		}
		if eof {
			t.Fatalf("%s stopped before printing %q; it printed:\n%s\nstderr:\n%s", p.name, missing, p.transcript(), p.stderr)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s printed no %q within %v; it printed:\n%s\nstderr:\n%s", p.name, missing, waitTimeout, p.transcript(), p.stderr)
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
