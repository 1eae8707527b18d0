package soak_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/headcount/headcount/internal/devsignin"
	"github.com/headcount/headcount/internal/poll"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headcount/headcount/internal/fakegithub"
	"github.com/headcount/headcount/internal/redistest"
	"github.com/headcount/headcount/internal/testserver"
	"github.com/headcount/headcount/stream"
	"github.com/headcount/headcount/stream/redis"
)

const (
	clientID     = "soak-client"
	clientSecret = "soak-client-secret"
	secret       = "soak-session-secret-0123456789abcdef"
	// workers is how many clients churn at once.
	workers = 24
	// users is how many GitHub accounts they share.
	users = 6
	// settle bounds every wait for the servers to agree with the clients.
	settle = 15 * time.Second
)

// duration is how long each scenario churns: HEADCOUNT_SOAK_DURATION, or a
// few seconds in the normal suite.
func duration(t *testing.T) time.Duration {
	v := os.Getenv("HEADCOUNT_SOAK_DURATION")
	if v == "" {
		return 4 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > 10*time.Minute {
		t.Fatalf("HEADCOUNT_SOAK_DURATION=%q: want a duration up to 10m", v)
	}
	return d
}

func TestSoakOneInstance(t *testing.T) {
	gh := fakegithub.Start(t, clientID, clientSecret)
	srv := open(t, gh, nil)
	soak(t, gh, []*testserver.Server{srv})
}

func TestSoakTwoInstancesOnRedis(t *testing.T) {
	r := redistest.Start(t) // a Redis of the soak's own
	gh := fakegithub.Start(t, clientID, clientSecret)
	var servers []*testserver.Server
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		counter, err := redis.New(ctx, r.URL(), redis.Options{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, open(t, gh, counter))
	}
	soak(t, gh, servers)
}

// open starts one instance signing in against gh; counter nil keeps the
// count in the process.
func open(t *testing.T, gh *fakegithub.Server, counter stream.Counter) *testserver.Server {
	t.Helper()
	return testserver.Start(t, map[string]string{
		"HEADCOUNT_SESSION_SECRET": secret,
		"HEADCOUNT_HEARTBEAT":      "500ms",
		// Low, so the churn meets the per-user limit (429) too.
		"HEADCOUNT_MAX_STREAMS_PER_USER": "10",
		"GITHUB_KEY":                     clientID,
		"GITHUB_SECRET":                  clientSecret,
		"GITHUB_AUTH_URL":                gh.AuthURL(),
		"GITHUB_TOKEN_URL":               gh.TokenURL(),
		"GITHUB_PROFILE_URL":             gh.ProfileURL(),
		"GITHUB_EMAIL_URL":               gh.EmailURL(),
	}, testserver.Options{Counter: counter})
}

// tally is what the clients saw.
type tally struct {
	opened   atomic.Int64
	failed   atomic.Int64 // requests that got no answer: a dial, read or API error
	statuses sync.Map     // status code → *atomic.Int64
}

func (ty *tally) saw(status int) {
	v, _ := ty.statuses.LoadOrStore(status, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (ty *tally) String() string {
	var b strings.Builder
	ty.statuses.Range(func(k, v any) bool {
		fmt.Fprintf(&b, "%d×%d ", k, v.(*atomic.Int64).Load())
		return true
	})
	return b.String()
}

func soak(t *testing.T, gh *fakegithub.Server, servers []*testserver.Server) {
	tokens := make([]string, users)
	for i := range tokens {
		tokens[i] = signIn(t, gh, servers[i%len(servers)], fakegithub.User{ID: int64(2000 + i), Login: fmt.Sprintf("soaker%d", i)})
	}
	// Warm up, so lazily started parts count in the baseline.
	warm := dialStream(t.Context(), servers[0], tokens[0])
	if warm.err != nil || warm.status != http.StatusOK {
		t.Fatalf("the warm-up stream: status %d, %v", warm.status, warm.err)
	}
	warm.conn.Close()
	awaitCounts(t, servers, tokens[0], 0)
	goroutines, heap := measure()

	ty := &tally{}
	deadline := time.Now().Add(duration(t))
	var wg sync.WaitGroup
	held := make(chan *rawStream, workers/2)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for time.Now().Before(deadline) {
				churn(t, rng, servers, tokens, ty, held, deadline)
			}
		}()
	}
	wg.Wait()

	// Quiet: only the streams the workers left open remain; every count
	// must equal them exactly.
	close(held)
	var kept []*rawStream
	for s := range held {
		kept = append(kept, s)
	}
	t.Logf("churned %d streams (%s); %d held at the end", ty.opened.Load(), ty, len(kept))
	if n := fiveXX(ty); n > 0 {
		t.Errorf("%d answers were 5xx: %s", n, ty)
	}
	if n := ty.failed.Load(); n > 0 {
		t.Errorf("%d requests got no answer (a dial, read or API error): a connection dropped or a handler died", n)
	}
	if ty.opened.Load() == 0 {
		t.Fatalf("no stream was ever admitted (%s)", ty)
	}
	awaitCounts(t, servers, tokens[0], len(kept))
	for _, s := range kept {
		s.conn.Close()
	}
	awaitCounts(t, servers, tokens[0], 0)

	// Everything the churn started has ended.
	var g int
	var h uint64
	if poll.Until(settle, func() bool {
		g, h = measure()
		return g <= goroutines+10 && h <= heap*2+8<<20
	}) != nil {
		t.Fatalf("after the soak: %d goroutines (start %d), heap %d KiB (start %d KiB)", g, goroutines, h>>10, heap>>10)
	}
	t.Logf("goroutines %d → %d, heap %d → %d KiB", goroutines, g, heap>>10, h>>10)
}

func fiveXX(ty *tally) int64 {
	var n int64
	ty.statuses.Range(func(k, v any) bool {
		if k.(int) >= 500 {
			n += v.(*atomic.Int64).Load()
		}
		return true
	})
	return n
}

func measure() (goroutines int, heap uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapInuse
}

// forge changes the first character of a token's signature: all six of
// its bits are the signature's, so the result is a different signature.
// (Ending it in "xx" instead, as this test once did, left about one token
// in a thousand valid: one that already ended that way, or whose last
// character differs from "x" only in the bits base64 leaves unused.)
func forge(token string) string {
	i := strings.LastIndexByte(token, '.') + 1
	c := byte('A')
	if token[i] == c {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}

// churn does one random thing a client does.
func churn(t *testing.T, rng *rand.Rand, servers []*testserver.Server, tokens []string, ty *tally, held chan<- *rawStream, deadline time.Time) {
	srv := servers[rng.IntN(len(servers))]
	token := tokens[rng.IntN(len(tokens))]
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(settle))
	defer cancel()
	switch kind := rng.IntN(10); {
	case kind == 0: // a bad credential
		s := dialStreamWith(ctx, srv, "Bearer "+forge(token))
		if s.err != nil {
			ty.failed.Add(1)
			return
		}
		ty.saw(s.status)
		s.conn.Close()
		if s.status != http.StatusUnauthorized {
			t.Errorf("a forged token got %d, want 401", s.status)
		}
		return
	case kind == 1: // the JSON API
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL()+"/api/count", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := apiClient.Do(req)
		if err != nil {
			ty.failed.Add(1)
			return
		}
		ty.saw(resp.StatusCode)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return
	default:
		s := dialStreamWith(ctx, srv, "Bearer "+token)
		if s.err != nil {
			ty.failed.Add(1)
			return
		}
		ty.saw(s.status)
		if s.status != http.StatusOK {
			s.conn.Close()
			return
		}
		ty.opened.Add(1)
		hold := time.Duration(rng.IntN(400)) * time.Millisecond
		switch kind {
		case 2: // reset: no FIN, an RST
			time.Sleep(hold)
			s.conn.(*net.TCPConn).SetLinger(0)
		case 3: // stuck: reads nothing more, then leaves
			time.Sleep(hold * 3)
		case 4: // slow: a byte at a time
			end := time.Now().Add(hold)
			buf := make([]byte, 1)
			for time.Now().Before(end) {
				s.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				s.r.Read(buf)
				time.Sleep(5 * time.Millisecond)
			}
		case 5: // stays to the end, if there is room
			select {
			case held <- s:
				return
			default:
			}
		default: // reads, then leaves
			s.conn.SetReadDeadline(time.Now().Add(hold))
			io.Copy(io.Discard, s.r)
		}
		s.conn.Close()
	}
}

// rawStream is a GET /events over a plain TCP connection, so a client
// can reset, stall or crawl as real ones do.
type rawStream struct {
	conn   net.Conn
	r      *bufio.Reader
	status int
	err    error
}

func dialStream(ctx context.Context, srv *testserver.Server, token string) *rawStream {
	return dialStreamWith(ctx, srv, "Bearer "+token)
}

// dialStreamWith opens /events with the Authorization value auth and, on a
// 200, reads up to the first count.
func dialStreamWith(ctx context.Context, srv *testserver.Server, auth string) *rawStream {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", srv.Addr().String())
	if err != nil {
		return &rawStream{err: err}
	}
	s := &rawStream{conn: conn, r: bufio.NewReaderSize(conn, 512)}
	conn.SetDeadline(time.Now().Add(settle))
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n\r\n", srv.Addr(), auth)
	line, err := s.r.ReadString('\n')
	if err != nil {
		conn.Close()
		return &rawStream{err: err}
	}
	if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &s.status); err != nil {
		conn.Close()
		return &rawStream{err: fmt.Errorf("status line %q", line)}
	}
	if s.status == http.StatusOK {
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				conn.Close()
				return &rawStream{err: err}
			}
			if strings.HasPrefix(line, "data: ") {
				break
			}
		}
	}
	conn.SetDeadline(time.Time{})
	return s
}

// awaitCounts waits until the instances together hold want streams and
// every instance tells that global count on /api/count.
func awaitCounts(t *testing.T, servers []*testserver.Server, token string, want int) {
	t.Helper()
	if poll.Until(settle, func() bool {
		local, agree := int64(0), true
		for _, srv := range servers {
			local += srv.Hub().Stats().Subscribers
			if apiCount(t, srv, token) != want {
				agree = false
			}
		}
		return local == int64(want) && agree
	}) != nil {
		var got []string
		for _, srv := range servers {
			got = append(got, fmt.Sprintf("local %d, /api/count %d", srv.Hub().Stats().Subscribers, apiCount(t, srv, token)))
		}
		t.Fatalf("the clients hold %d streams; the instances say %s", want, strings.Join(got, "; "))
	}
}

var apiClient = &http.Client{Timeout: 5 * time.Second}

// apiCount asks srv for the global count, as a signed-out monitor would
// not: /api/count needs a credential, so the soak's first user asks.
func apiCount(t *testing.T, srv *testserver.Server, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/api/count", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("/api/count: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		UserCount int `json:"user_count"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/api/count: %d %v", resp.StatusCode, err)
	}
	return body.UserCount
}

// signIn walks the GitHub flow for u at srv and returns a bearer token.
func signIn(t *testing.T, gh *fakegithub.Server, srv *testserver.Server, u fakegithub.User) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	gh.SignIn(u)
	resp, err := c.Get(srv.URL() + "/auth/github")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/" {
		t.Fatalf("sign-in ended at %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	tok, err := devsignin.NewToken(t.Context(), c, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}
