package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/headcount/headcount/internal/floor"
	"github.com/headcount/headcount/internal/testserver"
)

// TestMain fails the package if a run leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunAgainstTheServer runs every phase against the real server,
// in-process on a free loopback port, with a few streams.
func TestRunAgainstTheServer(t *testing.T) {
	if out, want := testRun(t, nil), "### headcount: N = 40 streams, churn 60"; !strings.Contains(out, want) {
		t.Errorf("the report lacks %q:\n%s", want, out)
	}
}

// TestRunWithPeople runs every phase with the watcher streams held by
// several people, each fan-out join and leave by a person of its own, so
// the server announces them (user events) beside the counts.
func TestRunWithPeople(t *testing.T) {
	out := testRun(t, []string{"-people", "7"})
	if want := "### headcount: N = 40 streams held by 7 people, churn 60"; !strings.Contains(out, want) {
		t.Errorf("the report lacks %q:\n%s", want, out)
	}
}

// TestCompareWithTheFloor runs the floor first and then headcount in one
// invocation, and prints the ratios.
func TestCompareWithTheFloor(t *testing.T) {
	out := testRun(t, []string{"-floor-url", startFloor(t)})
	for _, want := range []string{
		"### the floor (bench/floor): N = 40 streams, churn 0",
		"### headcount against the floor, N = 40 (same invocation)",
		"| RSS per subscriber | ",
		"| server CPU per event sent (fan-out) | ",
		"| leave → everyone, p99 of each round (median of rounds) | ",
		"| exodus: all but 10 leave at once → the rest agree | ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}

	// The median of pairs reads this report's ratios, every row of them.
	rs, err := readRatios(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(out, ratioHeading)
	table, _, _ = strings.Cut(table, "\n\nThe floor's")
	if want := strings.Count(table, "x** |"); rs.n != "40" || len(rs.names) != want || want < 12 {
		t.Errorf("read N = %s and %d ratios %v from the report, want 40 and the table's %d:\n%s", rs.n, len(rs.names), rs.names, want, out)
	}
	var medians strings.Builder
	writeMedians(&medians, []ratios{rs, rs, rs})
	for _, name := range rs.names {
		v := fmt.Sprintf("%.2fx", rs.values[name])
		if want := fmt.Sprintf("| %s | **%s** | %s | %s | %s, %s, %s |", name, v, v, v, v, v, v); !strings.Contains(medians.String(), want) {
			t.Errorf("the medians of three copies lack %q:\n%s", want, medians.String())
		}
	}
}

// TestFloorLast measures headcount first and the floor after it
// (-floor-last), and still compares them.
func TestFloorLast(t *testing.T) {
	out := testRun(t, []string{"-floor-url", startFloor(t), "-floor-last"})
	hc := strings.Index(out, "### headcount: N = 40 streams")
	fl := strings.Index(out, "### the floor (bench/floor): N = 40 streams")
	ratios := strings.Index(out, ratioHeading+"40 (same invocation)")
	if hc < 0 || fl < hc || ratios < fl {
		t.Errorf("want headcount's report, then the floor's, then the ratios; at %d, %d, %d:\n%s", hc, fl, ratios, out)
	}
}

// startFloor serves bench/floor's server on a free loopback port until
// the test ends and returns its URL.
func startFloor(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- floor.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + ln.Addr().String()
}

// testRun runs loadgen with a few streams and extra flags against a fresh
// headcount server and returns its report, which must show a clean run.
func testRun(t *testing.T, extra []string) string {
	t.Helper()
	env := map[string]string{
		"HEADCOUNT_ADDR":                 "127.0.0.1:0",
		"HEADCOUNT_MAX_STREAMS_PER_USER": "0",
	}
	srv := testserver.Start(t, env, testserver.Options{})

	var out, progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The server calls itself localhost; the load generator uses the
	// address, which also tests the sign-in across the two names.
	args := append([]string{"loadgen", "-url", "http://" + srv.Addr().String(),
		"-streams", "40", "-churn", "60", "-churn-concurrency", "8", "-rounds", "2", "-pause", "50ms",
		"-settle", "20s", "-metrics-poll", "10ms", "-exodus-keep", "10"}, extra...)
	err := run(ctx, args, &out, &progress)
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"### headcount: N = 40 streams",
		"| **versions that went backwards** (all streams, whole run) | **0** |",
		"| churn: headcount_user_count afterwards | 40 (want 40) |",
		"| cleanup: headcount_subscribers back to 0 | 0,",
		"| 40 | ",
		"exodus: 30 leave at once; **the 10 who stay show 10** after",
		"| exodus: of which the load generator's own closes | ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
	if got := srv.Hub().Stats().Subscribers; got != 0 {
		t.Errorf("the server still holds %d streams", got)
	}
	return out.String()
}
