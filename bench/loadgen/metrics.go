package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The server metrics a run reads. All are unlabelled.
const (
	mSubscribers = "headcount_subscribers"
	mUserCount   = "headcount_user_count"
	mRSS         = "process_resident_memory_bytes"
	mHeapInuse   = "go_memstats_heap_inuse_bytes"
	mGoroutines  = "go_goroutines"
	mStackInuse  = "go_memstats_stack_inuse_bytes"
	mOpenFDs     = "process_open_fds"
	mEventsSent  = "headcount_events_sent_total"
	mChanges     = "headcount_count_changes_total"
	mCPU         = "process_cpu_seconds_total"
	mOpened      = "headcount_streams_opened_total"
	mSkipped     = "headcount_events_skipped_total"
)

// sample is one scrape of the server's /metrics: unlabelled series by name.
type sample map[string]float64

// scrape reads the server's /metrics.
func scrape(ctx context.Context, c *http.Client, base string) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the unlabelled series of Prometheus text format.
func parseMetrics(r io.Reader) (sample, error) {
	s := sample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		s[f[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /metrics: %w", err)
	}
	for _, name := range []string{mSubscribers, mUserCount, mRSS, mHeapInuse, mGoroutines, mEventsSent, mCPU} {
		if _, ok := s[name]; !ok {
			return nil, fmt.Errorf("/metrics has no %s", name)
		}
	}
	return s, nil
}
