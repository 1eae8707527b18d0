package main

import (
	"context"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// newTestWatcher reads the stream text src as a watcher would.
func newTestWatcher(t *testing.T, src string) *watcher {
	t.Helper()
	w := &watcher{
		cancel: func() {},
		body:   io.NopCloser(strings.NewReader(src)),
		done:   make(chan struct{}),
		first:  make(chan struct{}),
		lo:     math.MaxInt,
		hi:     math.MinInt,
	}
	go w.read()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader did not finish")
	}
	return w
}

func TestWatcherReadsEvents(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want state
	}{{
		name: "r3labs order, retry and heartbeat",
		src: "id: 1\ndata: 1\nevent: user count\nretry: 2000\n\n" +
			": heartbeat\n\n" +
			"id: 2\ndata: 2\nevent: user count\n\n",
		want: state{version: 2, count: 2, events: 2, lo: 1, hi: 2},
	}, {
		name: "CRLF lines and no space after the colon",
		src:  "event:user count\r\nid:7\r\ndata:41\r\n\r\n",
		want: state{version: 7, count: 41, events: 1, lo: 41, hi: 41},
	}, {
		name: "an event cut off before its blank line does not count",
		src:  "id: 3\ndata: 3\n\nid: 4\ndata: 9\n",
		want: state{version: 3, count: 3, events: 1, lo: 3, hi: 3},
	}, {
		name: "a version going backwards is counted",
		src:  "id: 5\ndata: 5\n\nid: 4\ndata: 4\n\nid: 6\ndata: 6\n\n",
		want: state{version: 6, count: 6, events: 3, backwards: 1, lo: 4, hi: 6},
	}, {
		name: "the same id with another count is counted",
		src:  "id: 5\ndata: 5\n\nid: 5\ndata: 6\n\n",
		want: state{version: 5, count: 6, events: 2, mismatched: 1, lo: 5, hi: 6},
	}, {
		name: "people count and user events share the id sequence",
		src: "id: 1\nevent: user count\ndata: 1\n\nid: 2\nevent: people count\ndata: 1\n\n" +
			"id: 3\nevent: user\ndata: {\"login\":\"a\"}\n\nid: 2\nevent: user count\ndata: 2\n\n",
		want: state{version: 2, count: 2, events: 2, others: 2, backwards: 1, lo: 1, hi: 2},
	}, {
		name: "unparsable events and over-long lines",
		src: "id: 1\ndata: one\n\ndata: 2\n\n" +
			": " + strings.Repeat("x", 3*lineBufferSize) + "\n" +
			"id: 2\ndata: 2\n\n",
		want: state{version: 2, count: 2, events: 1, malformed: 2, lo: 2, hi: 2},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newTestWatcher(t, tt.src).snapshot()
			if got.readErr == nil {
				t.Error("a stream that ended by itself has no read error")
			}
			got.readErr, got.changedAt = nil, time.Time{}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWatcherChangedAtIsWhenTheCountChanged(t *testing.T) {
	pr, pw := io.Pipe()
	w := &watcher{cancel: func() {}, body: pr, done: make(chan struct{}), first: make(chan struct{}), lo: math.MaxInt, hi: math.MinInt}
	go w.read()
	defer w.close(time.Second)

	io.WriteString(pw, "id: 1\ndata: 3\n\n")
	<-w.first
	at := w.snapshot().changedAt
	time.Sleep(10 * time.Millisecond)
	io.WriteString(pw, ": heartbeat\n\n")
	io.WriteString(pw, "id: 2\ndata: 3\n\n") // a new version of the same count
	if err := waitShowing(context.Background(), []*watcher{w}, 3, time.Second); err != nil {
		t.Fatal(err)
	}
	for w.snapshot().events < 2 {
		time.Sleep(time.Millisecond)
	}
	if got := w.snapshot().changedAt; !got.Equal(at) {
		t.Errorf("changedAt moved by %v on an event that kept the count", got.Sub(at))
	}
	io.WriteString(pw, "id: 3\ndata: 4\n\n")
	if err := waitShowing(context.Background(), []*watcher{w}, 4, time.Second); err != nil {
		t.Fatal(err)
	}
	if got := w.snapshot().changedAt; !got.After(at) {
		t.Error("changedAt did not move when the count changed")
	}
	// Close from the client's side only: closing pw first would let the
	// reader see EOF (the server ending the stream) before close marks it.
	if !w.close(time.Second) {
		t.Error("the reader did not stop")
	}
	if st := w.snapshot(); st.readErr != nil {
		t.Errorf("a stream we closed reports %v", st.readErr)
	}
}

func TestPercentile(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {90, 90 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(ds, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one sample = %v", got)
	}
}

// TestRoundP99 takes three rounds of 100 samples, the last one slow: it
// sets the pooled p99, and the median of the rounds' p99s is the
// middle round's.
func TestRoundP99(t *testing.T) {
	var ds []time.Duration
	for _, base := range []time.Duration{10, 20, 900} {
		for i := range 100 {
			ds = append(ds, (base+time.Duration(i%10))*time.Millisecond)
		}
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	if got := percentile(sorted, 99); got < 900*time.Millisecond {
		t.Fatalf("pooled p99 = %v, want the slow round's", got)
	}
	if got, want := roundP99(ds, 100), 29*time.Millisecond; got != want {
		t.Errorf("roundP99 = %v, want %v", got, want)
	}
	if got := roundP99(ds[:50], 100); got != 0 {
		t.Errorf("roundP99 of less than a round = %v, want 0", got)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_heap_inuse_bytes 1.2e+07
headcount_streams_refused_total{reason="user_limit"} 3
headcount_subscribers 10
headcount_user_count 10
headcount_events_sent_total 100
process_cpu_seconds_total 1.5
process_resident_memory_bytes 3.4e+07
`
	s, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if s[mGoroutines] != 42 || s[mHeapInuse] != 1.2e7 || s[mRSS] != 3.4e7 || s[mCPU] != 1.5 {
		t.Errorf("parsed %v", s)
	}
	if _, ok := s["headcount_streams_refused_total"]; ok {
		t.Error("a labelled series was taken as unlabelled")
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines 1\n")); err == nil {
		t.Error("metrics without headcount_subscribers were accepted")
	}
}

func TestOptionsKeepTheLoadOnLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"-url", "http://192.0.2.1:8080"},
		{"-url", "http://example.com"},
		{"-url", "https://127.0.0.1:8080"},
		{"-sources", "127.0.0.1,10.0.0.1"},
		{"-streams", "0"},
	} {
		if _, err := parseOptions(args, io.Discard); err == nil {
			t.Errorf("%q was accepted", args)
		}
	}
	o, err := parseOptions([]string{"-url", "http://localhost:1/", "-sources", "127.0.0.2, 127.0.0.3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.url.String() != "http://localhost:1" || len(o.sources) != 2 {
		t.Errorf("got url %v, sources %v", o.url, o.sources)
	}
}
