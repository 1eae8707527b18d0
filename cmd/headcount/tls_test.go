package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/headcount/headcount/internal/ssetest"
	"github.com/headcount/headcount/internal/testcert"
	"github.com/headcount/headcount/stream"
)

// startTLS runs headcount with a certificate the test made, plus vars.
func startTLS(t *testing.T, vars map[string]string) (*instance, *testcert.Cert) {
	t.Helper()
	cert := testcert.Write(t, t.TempDir())
	all := map[string]string{"HEADCOUNT_TLS_CERT": cert.CertFile, "HEADCOUNT_TLS_KEY": cert.KeyFile}
	for k, v := range vars {
		all[k] = v
	}
	return start(t, all), cert
}

// newH2Client is newClient over TLS, trusting cert and speaking HTTP/2.
func newH2Client(t *testing.T, addr string, cert *testcert.Cert) *http.Client {
	t.Helper()
	return newClientTLS(t, addr, &tls.Config{RootCAs: cert.Pool, ServerName: "localhost"})
}

// waitUserCount waits up to limit until every stream's latest count is want.
func waitUserCount(t *testing.T, limit time.Duration, want int, streams ...*sseStream) {
	t.Helper()
	for i, s := range streams {
		if err := s.WaitLast(limit, strconv.Itoa(want)); err != nil {
			t.Fatalf("stream %d: want the count %d: %v", i, want, err)
		}
	}
}

// TestTLSServesHTTP2 checks HTTPS as SPEC has it: HTTP/2 by ALPN, an
// https base URL by default, Secure cookies, and nothing older than TLS
// 1.2 nor a cipher suite without forward secrecy and AEAD.
func TestTLSServesHTTP2(t *testing.T) {
	in, cert := startTLS(t, nil)
	rec, _ := in.log.find("headcount listening")
	if rec["tls"] != "true" || !strings.HasPrefix(in.url, "https://localhost:") {
		t.Errorf("listening line %v: want tls=true and an https://localhost URL", rec)
	}
	c := newH2Client(t, in.addr, cert)
	resp, body := fetch(t, c, newRequest(t, http.MethodGet, in.url+"/healthz", nil))
	expect(t, resp, body, http.StatusOK)
	if resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("GET /healthz over %s (TLS %v), want HTTP/2 negotiated by ALPN", resp.Proto, resp.TLS != nil)
	}
	// The sign-in's first cookie, under the default https base URL.
	resp, body = fetch(t, c, newRequest(t, http.MethodGet, in.url+"/auth/github", nil))
	expect(t, resp, body, http.StatusFound)
	if len(resp.Cookies()) == 0 {
		t.Fatal("GET /auth/github set no cookie")
	}
	for _, ck := range resp.Cookies() {
		if !ck.Secure || !ck.HttpOnly {
			t.Errorf("cookie %s: Secure %v, HttpOnly %v; want both under https", ck.Name, ck.Secure, ck.HttpOnly)
		}
	}
	// A whole sign-in over HTTP/2.
	alice := signIn(t, c, in.url, "alice")
	if n := count(t, c, in.url, alice.token); n != 0 {
		t.Errorf("count %d, want 0", n)
	}

	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"TLS 1.1", &tls.Config{MaxVersion: tls.VersionTLS11}},
		{"TLS 1.2 with CBC", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}}},
	} {
		tc.cfg.RootCAs, tc.cfg.ServerName = cert.Pool, "localhost"
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: requestTimeout}, "tcp", in.addr, tc.cfg)
		if err == nil {
			conn.Close()
			t.Errorf("%s: handshake succeeded, want it refused", tc.name)
		}
	}
	tls12, err := tls.DialWithDialer(&net.Dialer{Timeout: requestTimeout}, "tcp", in.addr,
		&tls.Config{RootCAs: cert.Pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("TLS 1.2 with the default suites: %v", err)
	}
	tls12.Close()
}

// TestStreamOverHTTP2 holds streams over one HTTP/2 connection: the first
// event, heartbeats and count changes arrive as over HTTP/1.1.
func TestStreamOverHTTP2(t *testing.T) {
	in, cert := startTLS(t, map[string]string{"HEADCOUNT_HEARTBEAT": "100ms"})
	c := newH2Client(t, in.addr, cert)
	alice := signIn(t, c, in.url, "alice")
	a := openStream(t, c, in.url, alice.token)
	if a.Response.ProtoMajor != 2 || a.first != 1 {
		t.Fatalf("stream over %s, first count %d; want HTTP/2 and 1", a.Response.Proto, a.first)
	}
	for _, h := range []string{"Cache-Control", "X-Accel-Buffering"} {
		if a.Response.Header.Get(h) == "" {
			t.Errorf("stream over HTTP/2 lacks %s", h)
		}
	}
	if err := a.Wait(requestTimeout, func(_ []ssetest.Event, comments []string, _ bool) bool { return len(comments) >= 3 }); err != nil {
		t.Fatalf("no three heartbeats over HTTP/2 within %v: %q", requestTimeout, a.Comments())
	}
	b := openStream(t, c, in.url, alice.token)
	waitUserCount(t, requestTimeout, 2, a, b)
	b.Close()
	waitUserCount(t, requestTimeout, 1, a)
}

// TestIdleStreamOverHTTP2 holds a stream quieter than the write timeout:
// over HTTP/2 a write deadline left armed while nothing is written resets
// the stream when it passes (over HTTP/1.1 it does nothing), which would
// cut every browser tab between two heartbeats.
func TestIdleStreamOverHTTP2(t *testing.T) {
	beat := stream.DefaultWriteTimeout + time.Second
	in, cert := startTLS(t, map[string]string{"HEADCOUNT_HEARTBEAT": beat.String()})
	c := newH2Client(t, in.addr, cert)
	alice := signIn(t, c, in.url, "alice")
	s := openStream(t, c, in.url, alice.token)
	err := s.Wait(beat+requestTimeout, func(_ []ssetest.Event, comments []string, ended bool) bool { return ended || len(comments) > 0 })
	if ended, why := s.Ended(); ended {
		t.Fatalf("an idle HTTP/2 stream ended (%v) before its first heartbeat, %v after its last event", why, beat)
	}
	if err != nil {
		t.Fatalf("no heartbeat within %v", beat+requestTimeout)
	}
	if n := count(t, c, in.url, alice.token); n != 1 {
		t.Errorf("count %d after the idle time, want 1", n)
	}
}

// stuckH2Client opens GET /events over HTTP/2 and never reads it: it
// tells the server its stream window is 0 bytes and never grows it, so no
// event can reach it. It answers the server's SETTINGS and PINGs so only
// the stream is stuck, not the connection. reset is closed when the
// server resets the stream.
type stuckH2Client struct {
	conn  *tls.Conn
	reset chan struct{}
	done  chan struct{}
}

func openStuckH2(t *testing.T, addr, token string, cert *testcert.Cert) *stuckH2Client {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: requestTimeout}, "tcp", addr,
		&tls.Config{RootCAs: cert.Pool, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		conn.Close()
		t.Fatalf("ALPN %q, want h2", p)
	}
	s := &stuckH2Client{conn: conn, reset: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() {
		conn.Close()
		<-s.done
	})
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{
		{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/events"},
		{"authorization", "Bearer " + token},
	} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	// The reader owns the framer from here on (it alone writes the acks).
	go func() {
		defer close(s.done)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					_ = fr.WritePing(true, f.Data)
				}
			case *http2.RSTStreamFrame:
				if f.StreamID == 1 {
					close(s.reset)
				}
			case *http2.GoAwayFrame:
				return
			}
		}
	}()
	return s
}

// TestStuckClientOverHTTP2 checks the stuck-client defence over HTTP/2:
// a stream whose window never opens holds nobody else's events, is ended
// by its write deadline, and leaves the count.
func TestStuckClientOverHTTP2(t *testing.T) {
	in, cert := startTLS(t, nil)
	c := newH2Client(t, in.addr, cert)
	alice := signIn(t, c, in.url, "alice")
	live := openStream(t, c, in.url, alice.token)

	stuck := openStuckH2(t, in.addr, alice.token, cert)
	waitUserCount(t, requestTimeout, 2, live)
	// While it is stuck, the others still hear of every change at once:
	// well before its write deadline could free anything.
	other := openStream(t, c, in.url, alice.token)
	waitUserCount(t, stream.DefaultWriteTimeout/2, 3, live, other)
	other.Close()
	waitUserCount(t, stream.DefaultWriteTimeout/2, 2, live)

	select {
	case <-stuck.reset:
	case <-time.After(stream.DefaultWriteTimeout + requestTimeout):
		t.Fatalf("the stuck stream was not reset within the write deadline (%v) and %v", stream.DefaultWriteTimeout, requestTimeout)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", in.log)
		}
	})
	waitUserCount(t, requestTimeout, 1, live)
}

// TestShutdownOverHTTP2 stops the program with ten streams on one HTTP/2
// connection: run returns nil within SPEC's five seconds and every stream
// ends cleanly.
func TestShutdownOverHTTP2(t *testing.T) {
	in, cert := startTLS(t, nil)
	c := newH2Client(t, in.addr, cert)
	alice := signIn(t, c, in.url, "alice")
	var streams []*sseStream
	for range 10 {
		s := openStream(t, c, in.url, alice.token)
		if s.Response.ProtoMajor != 2 {
			t.Fatalf("stream over %s, want HTTP/2", s.Response.Proto)
		}
		streams = append(streams, s)
	}
	waitUserCount(t, requestTimeout, 10, streams...)
	stopped := time.Now()
	in.stop()
	if err := in.wait(t, stopLimit); err != nil {
		t.Fatalf("run: %v", err)
	}
	waitEnded(t, streams, stopped.Add(stopLimit))
}
