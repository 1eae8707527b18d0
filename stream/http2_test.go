package stream

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTTP2 serves streams over HTTP/2, which cannot be hijacked: they
// take the ordinary path on the handler's goroutine and must count, order
// and end exactly as hijacked ones do.
func TestHTTP2(t *testing.T) {
	hub := NewHub(Config{})
	serving := make(chan struct{}, 10)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serving <- struct{}{}
		defer func() { <-serving }()
		if r.ProtoMajor != 2 {
			t.Errorf("request over %s, want HTTP/2", r.Proto)
		}
		if err := hub.Serve(w, r, testPerson(r.Header.Get(userHeader))); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()

	type h2stream struct {
		counts chan int
		cancel context.CancelFunc
		done   chan struct{}
	}
	open := func(user string) *h2stream {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
		req.Header.Set(userHeader, user)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		s := &h2stream{counts: make(chan int, 100), cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(s.done)
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			var name, data string
			for sc.Scan() {
				line := sc.Text()
				if v, ok := strings.CutPrefix(line, "event: "); ok {
					name = v
				}
				if v, ok := strings.CutPrefix(line, "data: "); ok {
					data = v
				}
				if line == "" {
					if name == countEventName {
						n, _ := strconv.Atoi(data)
						s.counts <- n
					}
					name, data = "", ""
				}
			}
		}()
		return s
	}
	// until waits for the stream to show want; every count it saw before
	// must be one a subscriber could have been told (from 1 to 2).
	until := func(s *h2stream, want int) {
		t.Helper()
		timeout := time.After(waitLong)
		for {
			select {
			case n := <-s.counts:
				if n < 1 || n > 2 {
					t.Fatalf("a stream was told %d", n)
				}
				if n == want {
					return
				}
			case <-timeout:
				t.Fatalf("no count %d within %v", want, waitLong)
			}
		}
	}

	a := open("alice")
	until(a, 1)
	b := open("bob")
	until(a, 2)
	until(b, 2)
	b.cancel()
	<-b.done
	until(a, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(waitLong):
		t.Fatal("the HTTP/2 stream did not end when the hub closed")
	}
	a.cancel()
	if !eventually(time.Second, func() bool { return len(serving) == 0 }) {
		t.Error("a Serve over HTTP/2 had not returned after Close")
	}
	if st := hub.Stats(); st.Opened != 2 || st.Closed != 2 {
		t.Errorf("stats %+v, want 2 opened and 2 closed", st)
	}
}
