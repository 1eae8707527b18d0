// Package redistest starts real Redis processes for tests, each on
// loopback ports of its own: a single node, a Sentinel set (one master,
// one replica, three sentinels) and a Cluster of masters made with
// redis-cli --cluster create. Every process is stopped and its files are
// removed when the test ends.
//
// Without redis-server on PATH a test is skipped, or fails when CI is
// "true", where a silent skip would leave a topology untested.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/headcount/headcount/internal/ci"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/testport"
)

// startTimeout bounds how long a process or a topology may take to be ready.
const startTimeout = 20 * time.Second

// Server is one redis-server (or sentinel) process of a test's own.
type Server struct {
	// Addr is host:port on loopback.
	Addr string

	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// need returns the path of name, skipping (or failing under CI) without it.
func need(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		ci.Missing(t, name, "apt-get install redis-server")
	}
	return path
}

// busOffset is how far above its port a Redis Cluster node's bus listens.
const busOffset = 10000

// Start runs redis-server on a free loopback port with no persistence,
// plus args, and waits until it answers PING.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return start(t, testport.Free(t), false, args...)
}

func start(t testing.TB, port int, sentinel bool, args ...string) *Server {
	t.Helper()
	bin := need(t, "redis-server")
	dir := t.TempDir()
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), t: t, exited: make(chan struct{}), log: filepath.Join(dir, "redis.log")}
	var argv []string
	if sentinel {
		// A sentinel rewrites its configuration file, so it needs one.
		conf := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte(strings.Join(args, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		argv = []string{conf, "--sentinel", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--logfile", s.log}
	} else {
		argv = append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--logfile", s.log}, args...)
	}
	s.cmd = exec.Command(bin, argv...)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.Signal(syscall.SIGCONT) // a frozen process cannot die of SIGKILL's cleanup otherwise soon enough
		s.Kill()
	})
	s.await(func() error { return s.ping() }, "answer PING")
	return s
}

// URL is redis://Addr.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Kill ends the process with SIGKILL and waits for it.
func (s *Server) Kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Signal sends sig to the process (SIGSTOP freezes it, SIGCONT thaws it).
func (s *Server) Signal(sig syscall.Signal) {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(sig)
	}
}

// Restart starts the process again on the same port, with the same
// arguments, after Kill.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.exited = make(chan struct{})
	s.cmd = exec.Command(s.cmd.Path, s.cmd.Args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := s.exited
	cmd := s.cmd
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.await(func() error { return s.ping() }, "answer PING after a restart")
}

// Do sends one command and returns its reply as text (arrays flattened,
// one element a line), or the server's error.
func (s *Server) Do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	var out []string
	if err := readReply(bufio.NewReader(conn), &out); err != nil {
		return "", err
	}
	return strings.Join(out, "\n"), nil
}

// MustDo is Do that fails the test on an error.
func (s *Server) MustDo(args ...string) string {
	s.t.Helper()
	out, err := s.Do(args...)
	if err != nil {
		s.t.Fatalf("%s %v: %v", s.Addr, args, err)
	}
	return out
}

// readReply reads one RESP2 reply into out.
func readReply(r *bufio.Reader, out *[]string) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		*out = append(*out, line[1:])
	case '-':
		return errors.New(line[1:])
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			*out = append(*out, "")
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		*out = append(*out, string(buf[:n]))
	case '*':
		n, _ := strconv.Atoi(line[1:])
		for range n {
			if err := readReply(r, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

func (s *Server) ping() error {
	out, err := s.Do("PING")
	if err != nil {
		return err
	}
	if out != "PONG" {
		return fmt.Errorf("PING answered %q", out)
	}
	return nil
}

// await polls cond every 50 ms until it returns nil, failing the test
// (with the server's log) after startTimeout.
func (s *Server) await(cond func() error, what string) {
	s.t.Helper()
	deadline := time.Now().Add(startTimeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("%s exited before it could %s; log:\n%s", s.Addr, what, s.Log())
		default:
		}
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("%s did not %s within %v: %v; log:\n%s", s.Addr, what, startTimeout, err, s.Log())
}

// Log returns what the server wrote to its log file.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// info returns the value of field in INFO section's output.
func (s *Server) info(section, field string) string {
	out, err := s.Do("INFO", section)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(out, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}

// Sentinel is a Sentinel-managed master with one replica and three
// sentinels, each a process of the test's own.
type Sentinel struct {
	// Name is the master's name in the sentinels.
	Name string
	// Data holds the two data nodes (the first is the master at start).
	Data []*Server
	// Sentinels are the three sentinel processes.
	Sentinels []*Server
}

// StartSentinel starts a master, a replica of it and three sentinels that
// monitor it, and waits until every sentinel knows the replica and the
// other sentinels, so that SENTINEL FAILOVER can promote the replica.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	master := Start(t)
	replica := Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	master.await(func() error {
		if v := master.info("replication", "connected_slaves"); v != "1" {
			return fmt.Errorf("connected_slaves %q", v)
		}
		return nil
	}, "see its replica")
	s := &Sentinel{Name: "headcount-test", Data: []*Server{master, replica}}
	for range 3 {
		s.Sentinels = append(s.Sentinels, start(t, testport.Free(t), true,
			"sentinel resolve-hostnames no",
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", s.Name, master.Port()),
			"sentinel down-after-milliseconds "+s.Name+" 2000",
			"sentinel failover-timeout "+s.Name+" 10000",
		))
	}
	for _, sn := range s.Sentinels {
		sn.await(func() error {
			out, err := sn.Do("SENTINEL", "REPLICAS", s.Name)
			if err != nil {
				return err
			}
			if !strings.Contains(out, strconv.Itoa(replica.Port())) {
				return errors.New("replica not known yet")
			}
			return nil
		}, "know the replica")
	}
	return s
}

// URL is the redis+sentinel:// URL of the set.
func (s *Sentinel) URL() string {
	addrs := make([]string, len(s.Sentinels))
	for i, sn := range s.Sentinels {
		addrs[i] = sn.Addr
	}
	return "redis+sentinel://" + strings.Join(addrs, ",") + "?master=" + s.Name
}

// Master returns the data node the sentinels currently name as master.
func (s *Sentinel) Master(t testing.TB) *Server {
	t.Helper()
	out := s.Sentinels[0].MustDo("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.Name)
	addr := strings.ReplaceAll(out, "\n", ":")
	for _, d := range s.Data {
		if d.Addr == addr {
			return d
		}
	}
	t.Fatalf("the sentinels name %q as master, none of the test's nodes", addr)
	return nil
}

// Failover forces a failover with SENTINEL FAILOVER and waits until the
// former replica is master, answering writes, and the sentinels say so.
// It returns the new master.
func (s *Sentinel) Failover(t testing.TB) *Server {
	t.Helper()
	old := s.Master(t)
	s.Sentinels[0].MustDo("SENTINEL", "FAILOVER", s.Name)
	var next *Server
	for _, d := range s.Data {
		if d != old {
			next = d
		}
	}
	next.await(func() error {
		if role := next.info("replication", "role"); role != "master" {
			return fmt.Errorf("role %q", role)
		}
		for _, sn := range s.Sentinels {
			out, err := sn.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.Name)
			if err != nil {
				return err
			}
			if strings.ReplaceAll(out, "\n", ":") != next.Addr {
				return fmt.Errorf("sentinel %s still names %q", sn.Addr, out)
			}
		}
		return nil
	}, "become master through SENTINEL FAILOVER")
	return next
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	// Nodes are the masters.
	Nodes []*Server
}

// StartCluster starts n cluster-enabled nodes, joins them with
// redis-cli --cluster create (no replicas) and waits until every node
// says the cluster is ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	cli := need(t, "redis-cli")
	c := &Cluster{}
	for range n {
		port := testport.Free(t, busOffset)
		dir := t.TempDir()
		c.Nodes = append(c.Nodes, start(t, port, false,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000"))
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range c.Nodes {
		s.await(func() error {
			out, err := s.Do("CLUSTER", "INFO")
			if err != nil {
				return err
			}
			if !strings.Contains(out, "cluster_state:ok") || !strings.Contains(out, fmt.Sprintf("cluster_known_nodes:%d", n)) {
				return errors.New("cluster not ok yet")
			}
			return nil
		}, "see the cluster ok")
	}
	return c
}

// URL is the redis+cluster:// URL naming every node.
func (c *Cluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// NodeFor returns the node that serves key's slot: the one that does not
// answer MOVED.
func (c *Cluster) NodeFor(t testing.TB, key string) *Server {
	t.Helper()
	for _, s := range c.Nodes {
		if _, err := s.Do("EXISTS", key); err == nil {
			return s
		}
	}
	t.Fatalf("no node serves %q", key)
	return nil
}
