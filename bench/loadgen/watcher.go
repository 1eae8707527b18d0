package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// lineBufferSize is each stream's read buffer: the events are a few short
// lines, and thousands of streams each hold one.
const lineBufferSize = 256

// watcher is one open /events stream and what it has been told. Its reader
// goroutine parses only the id:, event: and data: fields of each event;
// the counts are the "user count" events, and the others ("people count",
// "user") are only counted and checked for their ids.
type watcher struct {
	cancel context.CancelFunc
	body   io.ReadCloser
	// done is closed when the reader goroutine has returned.
	done chan struct{}
	// first is closed when the first count event has arrived.
	first chan struct{}

	mu        sync.Mutex
	closing   bool      // close was called: a read error is expected
	version   uint64    // id of the latest count event
	count     int       // data of the latest count event
	changedAt time.Time // arrival of the event that made count what it is
	events    int       // count events received
	others    int       // other events received (people count, user)
	lastID    uint64    // id of the latest event of any kind
	// backwards counts events whose id was lower than the one before it;
	// mismatched counts events that repeated the last id with another count.
	backwards, mismatched int
	malformed             int // events whose id or data did not parse
	// lo and hi are the least and greatest count since resetRange.
	lo, hi  int
	readErr error // why the stream ended, when not closed by us
}

// openStream opens GET /events with the bearer token and starts reading it.
// It returns once the response headers have arrived, with their arrival time.
func openStream(ctx context.Context, c *http.Client, base, token string) (*watcher, time.Time, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	if err != nil {
		cancel()
		return nil, time.Time{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		return nil, time.Time{}, err
	}
	headersAt := time.Now()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		cancel()
		return nil, time.Time{}, fmt.Errorf("GET /events: status %d (%s): %s", resp.StatusCode, resp.Header.Get("Content-Type"), bytes.TrimSpace(b))
	}
	w := &watcher{
		cancel: cancel,
		body:   resp.Body,
		done:   make(chan struct{}),
		first:  make(chan struct{}),
		lo:     math.MaxInt,
		hi:     math.MinInt,
	}
	go w.read()
	return w, headersAt, nil
}

// read parses the stream until it ends. Only complete events (ended by a
// blank line) count, as in an EventSource.
//
// It is not internal/ssetest's Parser, the tests' one SSE reader, on
// purpose: the load generator holds up to tens of thousands of streams,
// and this reader allocates nothing per line (ReadSlice into one 256-byte
// buffer, only the id: and data: fields parsed), so what the run measures
// is the server rather than the client's garbage collector.
func (w *watcher) read() {
	defer close(w.done)
	br := bufio.NewReaderSize(w.body, lineBufferSize)
	var (
		id, data, evName []byte
		hasID, hasData   bool
	)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// No field of ours is this long: drop the rest of the line.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == nil {
				continue
			}
		}
		if err != nil {
			w.end(err)
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if hasData {
				w.record(id, hasID, evName, data, time.Now())
			}
			hasID, hasData, evName = false, false, evName[:0]
		case line[0] == ':': // a comment: the heartbeat
		default:
			name, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(name) {
			case "id":
				id, hasID = append(id[:0], value...), true
			case "data":
				data, hasData = append(data[:0], value...), true
			case "event":
				evName = append(evName[:0], value...)
			}
		}
	}
}

// record takes in one event that arrived at t.
func (w *watcher) record(rawID []byte, hasID bool, name, rawData []byte, t time.Time) {
	isCount := len(name) == 0 || string(name) == "user count"
	var count int
	var err error
	if isCount {
		count, err = strconv.Atoi(string(rawData))
	}
	var version uint64
	if err == nil && hasID {
		version, err = strconv.ParseUint(string(rawID), 10, 64)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil || !hasID {
		w.malformed++
		return
	}
	if w.events+w.others > 0 && version < w.lastID {
		w.backwards++
	}
	w.lastID = max(w.lastID, version)
	if !isCount {
		w.others++
		return
	}
	if w.events > 0 && version == w.version && count != w.count {
		w.mismatched++
	}
	if w.events == 0 || count != w.count {
		w.changedAt = t
	}
	w.version, w.count = version, count
	w.lo, w.hi = min(w.lo, count), max(w.hi, count)
	w.events++
	if w.events == 1 {
		close(w.first)
	}
}

// end records why the stream ended, unless close asked for it.
func (w *watcher) end(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closing {
		if errors.Is(err, io.EOF) {
			err = errors.New("the server ended the stream")
		}
		w.readErr = err
	}
}

// close ends the stream and waits up to wait for the reader to return; it
// reports whether it did.
func (w *watcher) close(wait time.Duration) bool {
	w.stop()
	return w.waitUntil(time.Now().Add(wait))
}

// stop ends the stream from the client side: the connection is closed.
func (w *watcher) stop() {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.cancel()
	w.body.Close()
}

// waitUntil waits for the reader to return until deadline and reports
// whether it did.
func (w *watcher) waitUntil(deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-w.done:
		return true
	case <-t.C:
		return false
	}
}

// state is a consistent snapshot of a watcher.
type state struct {
	version               uint64
	count                 int
	changedAt             time.Time
	events                int
	others                int
	backwards, mismatched int
	malformed             int
	lo, hi                int
	readErr               error
}

// snapshot returns the watcher's state now.
func (w *watcher) snapshot() state {
	w.mu.Lock()
	defer w.mu.Unlock()
	return state{
		version: w.version, count: w.count, changedAt: w.changedAt, events: w.events, others: w.others,
		backwards: w.backwards, mismatched: w.mismatched, malformed: w.malformed,
		lo: w.lo, hi: w.hi, readErr: w.readErr,
	}
}

// showing reports whether the latest count is n.
func (w *watcher) showing(n int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events > 0 && w.count == n
}

// resetRange starts a new least/greatest count window at the current count.
func (w *watcher) resetRange() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lo, w.hi = w.count, w.count
}
