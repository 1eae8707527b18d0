package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Time limits the tests hold the program to.
const (
	startTimeout = 10 * time.Second
	// stopLimit is SPEC's bound on a graceful stop.
	stopLimit = 5 * time.Second
)

// instance is one run of the program, in this process.
type instance struct {
	log       *logBuffer
	stop      context.CancelFunc
	done      chan struct{} // closed when run has returned
	err       error         // what run returned; read only after done
	addr, url string        // from the "headcount listening" line
}

// launch calls run in a goroutine with exactly the environment vars and
// the command line args (the program name when none is given).
func launch(t *testing.T, vars map[string]string, args ...string) *instance {
	t.Helper()
	if len(args) == 0 {
		args = []string{"headcount"}
	}
	vars = maps.Clone(vars)
	ctx, stop := context.WithCancel(context.Background())
	in := &instance{log: new(logBuffer), stop: stop, done: make(chan struct{})}
	go func() {
		defer close(in.done)
		in.err = run(ctx, args, environ(vars), in.log)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-in.done:
		case <-time.After(2 * stopLimit):
			t.Errorf("run still running %v after the test cancelled it", 2*stopLimit)
		}
	})
	return in
}

// environ is vars as os.Environ would give them.
func environ(vars map[string]string) []string {
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// start launches run on a free loopback port and waits until it listens.
func start(t *testing.T, vars map[string]string) *instance {
	t.Helper()
	vars = maps.Clone(vars)
	if vars == nil {
		vars = map[string]string{}
	}
	if vars["HEADCOUNT_ADDR"] == "" {
		vars["HEADCOUNT_ADDR"] = "127.0.0.1:0"
	}
	in := launch(t, vars)
	rec := awaitListening(t, in.log, in.done, func(stopped bool) string {
		if stopped {
			return fmt.Sprintf("run returned %v; log:\n%s", in.err, in.log)
		}
		return fmt.Sprintf("log:\n%s", in.log)
	})
	in.addr, in.url = rec["addr"], rec["url"]
	if in.addr == "" || !strings.HasPrefix(in.url, "http") {
		t.Fatalf("listening line without addr= and url=: %v", rec)
	}
	return in
}

// wait waits up to limit for run to return and returns its error.
func (in *instance) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-in.done:
		return in.err
	case <-time.After(limit):
		t.Fatalf("run did not return within %v; log:\n%s", limit, in.log)
		return nil
	}
}

// TestRunRefusesBadEnvironment checks that a bad value stops run before it
// listens, with one line naming the variable.
func TestRunRefusesBadEnvironment(t *testing.T) {
	secret := strings.Repeat("k", 32)
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		varName string
	}{
		{"unparsable heartbeat", map[string]string{"HEADCOUNT_HEARTBEAT": "soon"}, "HEADCOUNT_HEARTBEAT"},
		{"negative token TTL", map[string]string{"HEADCOUNT_TOKEN_TTL": "-1h"}, "HEADCOUNT_TOKEN_TTL"},
		{"short secret with GitHub", map[string]string{"GITHUB_KEY": "id", "GITHUB_SECRET": "s", "HEADCOUNT_SESSION_SECRET": "short"}, "HEADCOUNT_SESSION_SECRET"},
		{"GitHub key without secret", map[string]string{"GITHUB_KEY": "id", "HEADCOUNT_SESSION_SECRET": secret}, "GITHUB_SECRET"},
		{"ftp base URL", map[string]string{"HEADCOUNT_BASE_URL": "ftp://x"}, "HEADCOUNT_BASE_URL"},
		{"http Redis URL", map[string]string{"HEADCOUNT_REDIS_URL": "http://127.0.0.1:6379"}, "HEADCOUNT_REDIS_URL"},
		{"negative stream limit", map[string]string{"HEADCOUNT_MAX_STREAMS": "-1"}, "HEADCOUNT_MAX_STREAMS"},
		{"dev mode on every interface", map[string]string{"HEADCOUNT_ADDR": "0.0.0.0:0"}, "HEADCOUNT_DEV_LOGIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := maps.Clone(tc.vars)
			if vars["HEADCOUNT_ADDR"] == "" {
				// Should it start after all, it stays on loopback.
				vars["HEADCOUNT_ADDR"] = "127.0.0.1:0"
			}
			err := launch(t, vars).wait(t, startTimeout)
			if err == nil {
				t.Fatalf("run returned nil, want an error naming %s", tc.varName)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.varName+": ") || strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error %q is not one line starting with %q", msg, tc.varName+": ")
			}
		})
	}
}

// TestRunAddressInUse checks that a port already taken stops run with an
// error saying which address, instead of serving nothing.
func TestRunAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	in := launch(t, map[string]string{"HEADCOUNT_ADDR": ln.Addr().String()})
	err = in.wait(t, startTimeout)
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("run on a taken address returned %v, want an error naming %s", err, ln.Addr())
	}
	if _, ok := in.log.find("headcount listening"); ok {
		t.Errorf("run logged that it listens on a taken address; log:\n%s", in.log)
	}
}

// TestRunRefusesArguments checks that command-line arguments, which
// headcount does not take, stop it rather than being ignored.
func TestRunRefusesArguments(t *testing.T) {
	for _, args := range [][]string{
		{"headcount", "serve"},
		{"headcount", "-addr", "127.0.0.1:0"},
		{"headcount", ""},
	} {
		t.Run(fmt.Sprint(args[1:]), func(t *testing.T) {
			in := launch(t, map[string]string{"HEADCOUNT_ADDR": "127.0.0.1:0"}, args...)
			err := in.wait(t, startTimeout)
			if err == nil {
				t.Fatalf("run(%q) returned nil, want an error", args)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", args[1])) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error %q is not one line quoting the argument %q", err, args[1])
			}
			if _, ok := in.log.find("headcount listening"); ok {
				t.Errorf("run(%q) listened; log:\n%s", args, in.log)
			}
		})
	}
}

// TestRunStopEndsEveryStream holds 50 streams from five users, cancels
// run's context, and checks that run returns nil within SPEC's five
// seconds, every stream ends cleanly, and no goroutine is left behind.
func TestRunStopEndsEveryStream(t *testing.T) {
	const users, perUser = 5, 10 // under the default per-user limit of 32
	in := start(t, nil)
	c := newClient(t, in.addr)

	var streams []*sseStream
	var token string
	for u := range users {
		token = signIn(t, c, in.url, fmt.Sprintf("user-%d", u)).token
		for range perUser {
			s := openStream(t, c, in.url, token)
			// Streams open one at a time, so each one's first event is
			// the count with it included.
			if want := len(streams) + 1; s.first != want {
				t.Errorf("stream %d's first event says %d, want %d", len(streams), s.first, want)
			}
			streams = append(streams, s)
		}
	}
	if n := count(t, c, in.url, token); n != users*perUser {
		t.Fatalf("GET /api/count = %d with %d streams open", n, users*perUser)
	}

	in.stop()
	deadline := time.Now().Add(stopLimit)
	if err := in.wait(t, stopLimit); err != nil {
		t.Fatalf("run returned %v after its context was cancelled, want nil; log:\n%s", err, in.log)
	}
	waitEnded(t, streams, deadline)
	for _, msg := range []string{"shutting down: ending every stream", "stopped"} {
		if _, ok := in.log.find(msg); !ok {
			t.Errorf("no %q line in the log:\n%s", msg, in.log)
		}
	}

	c.CloseIdleConnections()
	goleak.VerifyNone(t)
}

// TestRunStopClosesSilentConnections holds a connection that has sent
// nothing, as a browser's speculative preconnect does: the stop closes it
// and returns nil within SPEC's five seconds. (net/http counts such a
// connection idle only after five seconds, so the stop used to run out of
// time and fail.)
func TestRunStopClosesSilentConnections(t *testing.T) {
	in := start(t, nil)
	silent, err := net.Dial("tcp", in.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The server has it once a request on another connection is served
	// after it (both were accepted by the same loop, in order).
	resp, body := fetch(t, newClient(t, in.addr), newRequest(t, http.MethodGet, in.url+"/healthz", nil))
	expect(t, resp, body, http.StatusOK)

	in.stop()
	if err := in.wait(t, stopLimit); err != nil {
		t.Fatalf("run returned %v with a silent connection open, want nil; log:\n%s", err, in.log)
	}
	_ = silent.SetReadDeadline(time.Now().Add(stopLimit))
	if n, err := silent.Read(make([]byte, 1)); err == nil {
		t.Errorf("the silent connection read %d bytes after the stop, want it closed", n)
	}
}

// TestRunRequestLog checks that every request is logged once, with its
// method, route, status and duration, and that no credential reaches the
// log: not the session cookie, not a bearer token, not even one sent where
// it does not belong.
func TestRunRequestLog(t *testing.T) {
	in := start(t, map[string]string{"HEADCOUNT_LOG_LEVEL": "debug"})
	c := newClient(t, in.addr)
	alice := signIn(t, c, in.url, "alice")

	type line struct {
		method, route string
		status        int
	}
	// Every request this test makes, by method, route and status. The dev
	// provider's routes are only required, not counted: the server's own
	// goth client calls them too (token, profile, e-mails).
	want := map[line]int{
		{"GET", "/auth/github", http.StatusFound}:             1,
		{"GET", "/auth/github/callback", http.StatusSeeOther}: 1,
		{"POST", "/api/token", http.StatusOK}:                 1,
		{"GET", "/healthz", http.StatusOK}:                    1,
		{"GET", "/api/count", http.StatusOK}:                  2,
		{"GET", "/events", http.StatusUnauthorized}:           2,
		{"GET", "/events", http.StatusOK}:                     1,
		{"POST", "/logout", http.StatusSeeOther}:              1,
		{"GET", "/api/count", http.StatusUnauthorized}:        1,
		{"GET", "unmatched", http.StatusNotFound}:             1,
		{"DELETE", "/api/token", http.StatusMethodNotAllowed}: 1,
		{"POST", "/dev/github/*", http.StatusSeeOther}:        -1, // at least once
	}

	get := func(path string, header ...string) {
		t.Helper()
		req := newRequest(t, http.MethodGet, in.url+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		fetch(t, c, req)
	}
	get("/healthz?access_token=" + alice.token) // a token in a URL stays out of the log too
	get("/api/count", "Authorization", "Bearer "+alice.token)
	get("/api/count") // by the session cookie
	get("/events", "Authorization", "Bearer "+alice.token+"x")
	get("/events", "Authorization", "Bearer "+alice.session)
	get("/no/such/page/" + alice.token)
	fetch(t, c, newRequest(t, http.MethodDelete, in.url+"/api/token", nil))

	s := openStream(t, c, in.url, alice.token)
	s.Close() // returns once the client's reader has stopped
	resp, body := fetch(t, c, newRequest(t, http.MethodPost, in.url+"/logout", nil))
	expect(t, resp, body, http.StatusSeeOther)
	get("/api/count") // signed out: 401

	in.stop()
	if err := in.wait(t, stopLimit); err != nil {
		t.Fatalf("run: %v", err)
	}
	// run has returned, so every handler has finished and logged.

	got := map[line]int{}
	for _, rec := range in.log.records() {
		if rec["msg"] != "request" {
			continue
		}
		var l line
		l.method, l.route = rec["method"], rec["route"]
		if _, err := fmt.Sscanf(rec["status"], "%d", &l.status); err != nil {
			t.Errorf("request line without a numeric status: %v", rec)
		}
		if l.method == "" || l.route == "" {
			t.Errorf("request line without method or route: %v", rec)
		}
		if d, err := time.ParseDuration(rec["duration"]); err != nil || d < 0 {
			t.Errorf("request line without a duration: %v", rec)
		}
		if rec["client"] != "127.0.0.1" {
			t.Errorf("request line without the client's address 127.0.0.1: %v", rec)
		}
		wantLevel := "INFO"
		if l.route == "/healthz" {
			wantLevel = "DEBUG" // probes and scrapes are at debug
		}
		if rec["level"] != wantLevel {
			t.Errorf("request line at %s, want %s: %v", rec["level"], wantLevel, rec)
		}
		if _, err := time.ParseDuration(rec["stream_duration"]); (err == nil) != (l.route == "/events" && l.status == http.StatusOK) {
			t.Errorf("stream_duration on the wrong request line (only a stream's has one): %v", rec)
		}
		got[l]++
	}
	for l, n := range want {
		switch {
		case n < 0 && got[l] == 0:
			t.Errorf("no request line for %s %s → %d", l.method, l.route, l.status)
		case n >= 0 && got[l] != n:
			t.Errorf("%d request lines for %s %s → %d, want %d", got[l], l.method, l.route, l.status, n)
		}
	}
	for l, n := range got {
		if _, ok := want[l]; !ok && l.route != "/dev/github/*" {
			t.Errorf("%d unexpected request lines for %s %s → %d", n, l.method, l.route, l.status)
		}
	}

	log := in.log.String()
	for name, secret := range map[string]string{"session cookie": alice.session, "bearer token": alice.token} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains the %s %q:\n%s", name, secret, log)
		}
	}
}

// TestRunDevModeWarning checks that dev sign-in mode warns at start, and
// that GitHub sign-in does not.
func TestRunDevModeWarning(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		warn bool
	}{
		{"dev sign-in", nil, true},
		{"GitHub", map[string]string{
			"GITHUB_KEY":               "client-id",
			"GITHUB_SECRET":            "client-secret",
			"HEADCOUNT_SESSION_SECRET": strings.Repeat("k", 32),
			// Never called at start; loopback in case they were.
			"GITHUB_AUTH_URL":    "http://127.0.0.1:1/login/oauth/authorize",
			"GITHUB_TOKEN_URL":   "http://127.0.0.1:1/login/oauth/access_token",
			"GITHUB_PROFILE_URL": "http://127.0.0.1:1/user",
			"GITHUB_EMAIL_URL":   "http://127.0.0.1:1/user/emails",
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := start(t, tc.vars)
			warned := false
			for _, rec := range in.log.records() {
				if rec["level"] == "WARN" && strings.Contains(rec["msg"], "dev sign-in") {
					warned = true
				}
			}
			if warned != tc.warn {
				t.Errorf("dev sign-in warning logged: %v, want %v; log:\n%s", warned, tc.warn, in.log)
			}
			listening, _ := in.log.find("headcount listening")
			if want := fmt.Sprint(tc.warn); listening["dev_sign_in"] != want {
				t.Errorf("listening line says dev_sign_in=%s, want %s", listening["dev_sign_in"], want)
			}
			in.stop()
			if err := in.wait(t, stopLimit); err != nil {
				t.Fatalf("run: %v", err)
			}
		})
	}
}
