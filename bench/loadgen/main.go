// Command loadgen measures a running headcount server from the outside: it
// signs in through the dev identity provider, holds N live /events streams,
// and reports how fast they open, how long a join or a leave takes to reach
// every subscriber, what each subscriber costs the server in memory, and
// whether the count stays exact and ordered under churn. It prints its
// results as Markdown tables and exits non-zero when a correctness check
// fails.
//
// Traffic goes only to loopback: the server URL and every source address
// must be loopback addresses. Client connections are spread over several
// source addresses, since one source address has only ~28,000 ephemeral
// ports. See docs/benchmarks.md for how it is run and what it measured.
//
// "loadgen median REPORT..." reads the reports of several runs against the
// floor (one N) and prints the median of each ratio (bench/run.sh, PAIRS).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/headcount/headcount/internal/fdlimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// options are loadgen's flags, checked.
type options struct {
	url       *url.URL
	streams   int
	churn     int
	churnConc int
	rampConc  int
	rounds    int
	pause     time.Duration
	sources   []net.IP
	timeout   time.Duration
	settle    time.Duration
	login     string
	// people is how many people hold the watcher streams: 1 signs in as
	// login; more sign in as login0, login1, ... and take the streams in
	// turn, and every fan-out join and leave is by a person of its own
	// (login-probe), so it is announced.
	people      int
	quiet       bool
	metricsPoll time.Duration
	// exodusKeep is how many watchers stay when the rest leave at once.
	exodusKeep int
	// floorURL, when set, is a bench/floor server measured first, with the
	// same phases but the churn (it counts nothing itself: the load
	// generator publishes each count, the exodus's once its closes are
	// done).
	floorURL *url.URL
	// floor says this run is against the floor: no sign-in, and the load
	// generator publishes every count.
	floor bool
	// floorLast measures the floor after headcount instead of before: the
	// second run of a pair finds the load generator warm (connecting
	// 10,000 took up to twice as long in the first), so bench/run.sh takes
	// turns.
	floorLast bool
}

// parseOptions reads args (without the program name) into options.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o       options
		rawURL  string
		sources string
	)
	fs.StringVar(&rawURL, "url", "http://127.0.0.1:18080", "base URL of the headcount server (loopback only)")
	fs.IntVar(&o.streams, "streams", 1000, "watcher streams held open (N)")
	fs.IntVar(&o.churn, "churn", 2000, "joins plus leaves in the churn phase: churn/2 short-lived streams each join and leave")
	fs.IntVar(&o.churnConc, "churn-concurrency", 50, "short-lived streams open at once during the churn")
	fs.IntVar(&o.rampConc, "ramp-concurrency", 200, "streams being opened at once during the ramp")
	fs.IntVar(&o.rounds, "rounds", 5, "fan-out rounds (one join and one leave each)")
	fs.DurationVar(&o.pause, "pause", 250*time.Millisecond, "quiet time before each fan-out join or leave, longer than the server's coalescing gap")
	fs.StringVar(&sources, "sources", "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4", "comma-separated loopback source addresses, used round-robin")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	fs.DurationVar(&o.settle, "settle", time.Minute, "bound on each wait for the streams to agree on a count")
	fs.StringVar(&o.login, "login", "loadgen", "user name to sign in as (dev sign-in mode)")
	fs.IntVar(&o.people, "people", 1, "people holding the watcher streams (dev sign-in as login0, login1, ...); above 1, each fan-out join and leave is by a person of its own, so it is announced")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	fs.DurationVar(&o.metricsPoll, "metrics-poll", 50*time.Millisecond, "interval of /metrics polls while waiting for the server")
	fs.IntVar(&o.exodusKeep, "exodus-keep", 1000, "after the churn, all watchers but this many leave at once (0: no exodus)")
	var rawFloor string
	fs.StringVar(&rawFloor, "floor-url", "", "base URL of a bench/floor server to measure first, for ratios (loopback only)")
	fs.BoolVar(&o.floorLast, "floor-last", false, "with -floor-url, measure the floor after headcount instead of before")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	u, err := parseLoopbackURL("-url", rawURL)
	if err != nil {
		return o, err
	}
	o.url = u
	if rawFloor != "" {
		if o.floorURL, err = parseLoopbackURL("-floor-url", rawFloor); err != nil {
			return o, err
		}
	}
	for s := range strings.SplitSeq(sources, ",") {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil || !ip.IsLoopback() {
			return o, fmt.Errorf("-sources: %q is not a loopback address", s)
		}
		o.sources = append(o.sources, ip)
	}
	switch {
	case o.streams < 1:
		return o, fmt.Errorf("-streams must be at least 1")
	case o.churn < 0 || o.churnConc < 1 || o.rampConc < 1 || o.rounds < 0:
		return o, fmt.Errorf("-churn, -rounds must not be negative; concurrencies must be at least 1")
	case o.timeout <= 0 || o.settle <= 0 || o.metricsPoll <= 0 || o.pause < 0:
		return o, fmt.Errorf("-timeout, -settle and -metrics-poll must be positive, -pause not negative")
	case o.exodusKeep < 0:
		return o, fmt.Errorf("-exodus-keep must not be negative")
	case o.people < 1 || o.people > o.streams:
		return o, fmt.Errorf("-people must be from 1 to -streams")
	}
	return o, nil
}

// parseLoopbackURL checks that raw (the value of flag) is an http URL of
// this machine's loopback.
func parseLoopbackURL(flag, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("%s %q: want http://<loopback host>:<port>", flag, raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("%s %q: load goes to loopback only (127.0.0.0/8, ::1 or localhost)", flag, raw)
	}
	return u, nil
}

// isLoopbackHost reports whether host names this machine's loopback.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// run parses args (args[0] is the program name), runs every phase against
// the server and writes the result tables to stdout and progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 1 && args[1] == "median" {
		return runMedian(args[2:], stdout)
	}
	o, err := parseOptions(args[1:], stderr)
	if err != nil {
		return err
	}
	nofile, err := fdlimit.Raise()
	if err != nil {
		return fmt.Errorf("raising the open-file limit: %w", err)
	}
	// Every stream holds a descriptor here too; keep room for the churn
	// pool, the probe and the odd metrics request.
	if need := uint64(o.streams + o.churnConc + 64); nofile > 0 && need > nofile {
		return fmt.Errorf("-streams %d needs about %d open files; the limit is %d", o.streams, need, nofile)
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.floorURL == nil {
		_, err := measure(ctx, o, stdout, stderr)
		return err
	}
	fo := o
	fo.url, fo.floor, fo.churn, fo.people = o.floorURL, true, 0, 1
	measureFloor := func() (*result, error) {
		res, err := measure(ctx, fo, stdout, stderr)
		if err != nil {
			return nil, fmt.Errorf("the floor: %w", err)
		}
		return res, nil
	}
	var floor, res *result
	if !o.floorLast {
		if floor, err = measureFloor(); err != nil {
			return err
		}
	}
	res, err = measure(ctx, o, stdout, stderr)
	if err == nil && o.floorLast {
		floor, err = measureFloor()
	}
	if floor != nil && res != nil {
		writeRatios(stdout, floor, res)
	}
	return err
}

// measure runs every phase against o's server, prints the results and
// returns them with the first failure.
func measure(ctx context.Context, o options, stdout, stderr io.Writer) (*result, error) {
	lt := newLoadTest(o, stderr)
	defer lt.closeIdle()
	res, err := lt.run(ctx)
	if res != nil {
		res.writeMarkdown(stdout)
	}
	if err != nil {
		return res, err
	}
	return res, res.check()
}
