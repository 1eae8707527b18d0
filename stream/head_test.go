package stream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestResponseHead checks the head a hijacked stream writes as net/http
// would: what middleware set goes out, line breaks in a value cannot
// start a header of their own, an invalid name is left out, and the
// framing and date are the hub's.
func TestResponseHead(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Type", "text/event-stream")
	h.Add("Vary", "Cookie")
	h.Add("Vary", "Authorization")
	h.Set("X-Injected", " one\r\nSet-Cookie: evil=1\r\n")
	h["Bad Name"] = []string{"x"}
	h.Set("Content-Length", "5")
	h.Set("Date", "Mon, 01 Jan 1990 00:00:00 GMT")
	h.Set("Transfer-Encoding", "gzip")

	head := appendHead(nil, http.StatusOK, h)
	if !bytes.HasSuffix(head, []byte("\r\n\r\n")) || bytes.Count(head, []byte("\r\n\r\n")) != 1 {
		t.Fatalf("head does not end once in a blank line:\n%q", head)
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(bytes.NewReader(head), strings.NewReader("3\r\nabc\r\n0\r\n\r\n"))), nil)
	if err != nil {
		t.Fatalf("%v; head:\n%q", err, head)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "abc" {
		t.Errorf("body %q, %v; want the chunked body abc", body, err)
	}
	got := resp.Header
	if resp.StatusCode != http.StatusOK || got.Get("Content-Type") != "text/event-stream" {
		t.Errorf("status %d, Content-Type %q", resp.StatusCode, got.Get("Content-Type"))
	}
	if v := got.Values("Vary"); len(v) != 2 || v[0] != "Cookie" || v[1] != "Authorization" {
		t.Errorf("Vary %q, want Cookie then Authorization", v)
	}
	if v := got.Get("X-Injected"); v != "one  Set-Cookie: evil=1" || got.Get("Set-Cookie") != "" {
		t.Errorf("X-Injected %q, Set-Cookie %q: a line break in a value started a header", v, got.Get("Set-Cookie"))
	}
	if bytes.Contains(head, []byte("Bad Name")) {
		t.Errorf("an invalid header name went out:\n%q", head)
	}
	if got.Get("Content-Length") != "" || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("Content-Length %q, Transfer-Encoding %q; want none and chunked", got.Get("Content-Length"), resp.TransferEncoding)
	}
	if d, err := http.ParseTime(got.Get("Date")); err != nil || d.Year() < 2026 {
		t.Errorf("Date %q (%v), want now", got.Get("Date"), err)
	}
}

// BenchmarkResponseHead is the head of one hijacked stream, with the
// headers a stream of the service carries:
//
//	go test -run '^$' -bench ResponseHead -benchmem ./stream
func BenchmarkResponseHead(b *testing.B) {
	h := http.Header{}
	for k, v := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive",
		"X-Accel-Buffering": "no", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
		"Referrer-Policy": "no-referrer", "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
	} {
		h.Set(k, v)
	}
	b.ReportAllocs()
	var head []byte
	for b.Loop() {
		head = appendHead(head[:0], http.StatusOK, h)
	}
}
