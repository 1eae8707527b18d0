package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of the waits that need no flag.
const (
	// pollInterval is how often the streams are checked while waiting for
	// them to agree on a count. Arrival times are stamped by the readers,
	// so it limits nothing but how soon a wait notices it is over.
	pollInterval = 2 * time.Millisecond
	// stableWindow is how long the counts must stay put after a churn
	// before its result is read: longer than the SPEC's one second.
	stableWindow = 1500 * time.Millisecond
	// closeWait bounds the wait for a stream's reader after closing it
	// (for all the watchers at once in the cleanup).
	closeWait = 5 * time.Second
	// cleanupLimit bounds the cleanup, which runs even after the run's
	// context has ended.
	cleanupLimit = 30 * time.Second
	// goroutineWait bounds the wait for the server's goroutines to return
	// to what they were before the run, give or take goroutineSlack
	// (scrapes and sign-in connections come and go).
	goroutineWait  = 10 * time.Second
	goroutineSlack = 5
)

// loadTest is one run against one server. Its phases run one after another
// on the caller's goroutine; each phase owns and stops the goroutines it starts.
type loadTest struct {
	o        options
	progress io.Writer
	tr       *http.Transport
	client   *http.Client
	base     string
	// tokens are the watcher streams' people, taken in turn; probe is the
	// fan-out's own person's. Both are empty against the floor, which
	// signs nobody in.
	tokens []string
	probe  string
	// watchers are the N streams held from the ramp to the cleanup.
	watchers []*watcher
	// extra collects the violations seen by streams that are already
	// closed (fan-out probes, churn streams).
	extra violations
	// published is the id of the latest event published to the floor.
	published uint64
}

// violations are the correctness failures the streams saw.
type violations struct {
	backwards, mismatched, malformed, dropped int
}

// add counts the violations one stream saw; a read error means the
// server ended the stream.
func (v *violations) add(st state) {
	v.backwards += st.backwards
	v.mismatched += st.mismatched
	v.malformed += st.malformed
	if st.readErr != nil {
		v.dropped++
	}
}

// newLoadTest prepares a run with o; progress lines go to progress
// unless o.quiet.
func newLoadTest(o options, progress io.Writer) *loadTest {
	if o.quiet {
		progress = io.Discard
	}
	tr := newTransport(o.sources)
	return &loadTest{
		o:        o,
		progress: progress,
		tr:       tr,
		client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		base: o.url.String(),
	}
}

// logf writes one progress line.
func (lt *loadTest) logf(format string, args ...any) {
	fmt.Fprintf(lt.progress, "loadgen: "+format+"\n", args...)
}

// closeIdle closes the kept-alive connections of sign-in and scrapes.
func (lt *loadTest) closeIdle() { lt.tr.CloseIdleConnections() }

// run signs in and runs every phase, and always cleans up. The result
// holds whatever was measured, even when a phase failed.
func (lt *loadTest) run(ctx context.Context) (*result, error) {
	res := &result{o: lt.o}
	if lt.o.floor {
		lt.logf("the floor at %s; %d streams from %d source addresses", lt.base, lt.o.streams, len(lt.o.sources))
	} else {
		if err := lt.signInPeople(ctx); err != nil {
			return nil, err
		}
	}

	err := lt.phases(ctx, res)
	if cerr := lt.cleanup(res); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return res, err
}

// signInPeople signs in the people of the run: one, login, or o.people of
// them and the fan-out's probe person, a few at a time.
func (lt *loadTest) signInPeople(ctx context.Context) error {
	if lt.o.people == 1 {
		token, err := signIn(ctx, lt.tr, lt.o.url, lt.o.login)
		if err != nil {
			return err
		}
		lt.tokens, lt.probe = []string{token}, token
		lt.logf("signed in as %q; %d streams from %d source addresses", lt.o.login, lt.o.streams, len(lt.o.sources))
		return nil
	}
	logins := make([]string, lt.o.people+1)
	for i := range lt.o.people {
		logins[i] = fmt.Sprintf("%s%d", lt.o.login, i)
	}
	logins[lt.o.people] = lt.o.login + "-probe"
	tokens := make([]string, len(logins))
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs error
		wg   sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(logins) || ctx.Err() != nil {
					return
				}
				token, err := signIn(ctx, lt.tr, lt.o.url, logins[i])
				mu.Lock()
				tokens[i], errs = token, errors.Join(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Workers that stopped for the context left tokens empty.
	if errs = errors.Join(errs, ctx.Err()); errs != nil {
		return errs
	}
	lt.tokens, lt.probe = tokens[:lt.o.people], tokens[lt.o.people]
	lt.logf("signed in %d people as %s0 to %s%d, and %s-probe; %d streams from %d source addresses",
		lt.o.people, lt.o.login, lt.o.login, lt.o.people-1, lt.o.login, lt.o.streams, len(lt.o.sources))
	return nil
}

// phases runs the ramp, the fan-out rounds and the churn.
func (lt *loadTest) phases(ctx context.Context, res *result) error {
	before, err := scrape(ctx, lt.client, lt.base)
	if err != nil {
		return err
	}
	if before[mSubscribers] != 0 {
		return fmt.Errorf("the server already holds %v streams: results would be off; use a server of its own", before[mSubscribers])
	}
	res.before = before
	if err := lt.ramp(ctx, res); err != nil {
		return fmt.Errorf("ramp: %w", err)
	}
	if err := lt.fanOut(ctx, res); err != nil {
		return fmt.Errorf("fan-out: %w", err)
	}
	if err := lt.churn(ctx, res); err != nil {
		return fmt.Errorf("churn: %w", err)
	}
	if err := lt.exodus(ctx, res); err != nil {
		return fmt.Errorf("exodus: %w", err)
	}
	return nil
}

// publish tells the floor's streams that the count is n: the floor counts
// nothing itself. Against headcount it does nothing.
func (lt *loadTest) publish(ctx context.Context, n int) error {
	if !lt.o.floor {
		return nil
	}
	lt.published++
	form := url.Values{"id": {strconv.FormatUint(lt.published, 10)}, "data": {strconv.Itoa(n)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, lt.base+"/publish", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := lt.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("POST /publish: status %d, want 204: %.200s", resp.StatusCode, b)
	}
	return nil
}

// exodus closes every watcher but the first exodusKeep at once and waits
// until those who stay show how many they are.
func (lt *loadTest) exodus(ctx context.Context, res *result) error {
	keep := lt.o.exodusKeep
	if keep == 0 || keep >= len(lt.watchers) {
		return nil
	}
	leaving := lt.watchers[keep:]
	start := time.Now()
	for _, w := range leaving {
		w.stop()
	}
	// The closes share the machine with the server: on two cores the
	// load generator's own part of the time is worth knowing.
	res.exodusClosed = time.Since(start)
	// The floor learns the count only now: its subscribers see it as soon
	// as the load generator could have told anyone, the least any server
	// could take here.
	if err := lt.publish(ctx, keep); err != nil {
		return err
	}
	for _, w := range leaving {
		w.waitUntil(start.Add(closeWait))
		lt.extra.add(w.snapshot())
	}
	lt.watchers = lt.watchers[:keep]
	if err := waitShowing(ctx, lt.watchers, keep, lt.o.settle); err != nil {
		return err
	}
	res.exodusLeft = len(leaving)
	res.exodusAgree = latestChange(lt.watchers).Sub(start)
	lt.logf("exodus: %d left at once; the %d who stay show %d %v after", len(leaving), keep, keep, res.exodusAgree.Round(time.Millisecond))
	return nil
}

// ramp opens the N watcher streams, rampConc at a time, and waits until
// every one of them shows N.
func (lt *loadTest) ramp(ctx context.Context, res *result) error {
	n := lt.o.streams
	lt.watchers = make([]*watcher, n)
	var (
		next        atomic.Int64
		lastHeaders atomic.Int64 // UnixNano of the latest response headers
		abort       atomic.Bool
		mu          sync.Mutex
		failed      int
		firstErr    error
		wg          sync.WaitGroup
	)
	cpu0 := cpuTime()
	start := time.Now()
	for range min(lt.o.rampConc, n) {
		wg.Go(func() {
			for !abort.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				var token string
				if len(lt.tokens) > 0 {
					token = lt.tokens[i%len(lt.tokens)]
				}
				w, at, err := openStream(ctx, lt.client, lt.base, token)
				if err != nil {
					abort.Store(true)
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				lt.watchers[i] = w
				for {
					old := lastHeaders.Load()
					if at.UnixNano() <= old || lastHeaders.CompareAndSwap(old, at.UnixNano()) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		lt.watchers = slices.DeleteFunc(lt.watchers, func(w *watcher) bool { return w == nil })
		return fmt.Errorf("%d streams could not open (%d had opened); the first error: %w", failed, len(lt.watchers), firstErr)
	}
	res.rampOpen = time.Unix(0, lastHeaders.Load()).Sub(start)
	lt.logf("ramp: %d streams open in %v; waiting for every one to show %d", n, res.rampOpen.Round(time.Millisecond), n)
	if err := lt.publish(ctx, n); err != nil {
		return err
	}

	if err := waitShowing(ctx, lt.watchers, n, lt.o.settle); err != nil {
		return err
	}
	res.rampAgree = latestChange(lt.watchers).Sub(start)
	res.rampClientCPU = cpuTime() - cpu0
	after, err := scrape(ctx, lt.client, lt.base)
	if err != nil {
		return err
	}
	res.afterRamp = after
	lt.logf("ramp: every stream shows %d, %v after the first connect", n, res.rampAgree.Round(time.Millisecond))
	return nil
}

// fanOut measures rounds of one join and one leave with the N watchers open.
func (lt *loadTest) fanOut(ctx context.Context, res *result) error {
	n := lt.o.streams
	first, err := scrape(ctx, lt.client, lt.base)
	if err != nil {
		return err
	}
	cpu0 := cpuTime()
	for round := range lt.o.rounds {
		if err := sleep(ctx, lt.o.pause); err != nil {
			return err
		}
		requested := time.Now()
		probe, headersAt, err := openStream(ctx, lt.client, lt.base, lt.probe)
		if err != nil {
			return err
		}
		if err := lt.publish(ctx, n+1); err != nil {
			probe.close(closeWait)
			return err
		}
		if err := waitShowing(ctx, lt.watchers, n+1, lt.o.settle); err != nil {
			probe.close(closeWait)
			return fmt.Errorf("round %d, join: %w", round+1, err)
		}
		var last time.Duration
		for _, w := range lt.watchers {
			at := w.snapshot().changedAt
			res.joinFromHeaders = append(res.joinFromHeaders, at.Sub(headersAt))
			res.joinFromRequest = append(res.joinFromRequest, at.Sub(requested))
			last = max(last, at.Sub(headersAt))
		}
		res.joinLast = append(res.joinLast, last)
		if err := waitShowing(ctx, []*watcher{probe}, n+1, lt.o.settle); err != nil {
			probe.close(closeWait)
			return fmt.Errorf("round %d, the new stream's first event: %w", round+1, err)
		}
		res.probeFirst = append(res.probeFirst, probe.snapshot().changedAt.Sub(headersAt))
		res.probeHeaders = append(res.probeHeaders, headersAt.Sub(requested))

		if err := sleep(ctx, lt.o.pause); err != nil {
			probe.close(closeWait)
			return err
		}
		closed := time.Now()
		probe.close(closeWait)
		lt.extra.add(probe.snapshot())
		if err := lt.publish(ctx, n); err != nil {
			return err
		}
		if err := waitShowing(ctx, lt.watchers, n, lt.o.settle); err != nil {
			return fmt.Errorf("round %d, leave: %w", round+1, err)
		}
		last = 0
		for _, w := range lt.watchers {
			d := w.snapshot().changedAt.Sub(closed)
			res.leave = append(res.leave, d)
			last = max(last, d)
		}
		res.leaveLast = append(res.leaveLast, last)
		lt.logf("fan-out round %d: join reached all %d in %v, leave in %v", round+1, n,
			res.joinLast[round].Round(time.Microsecond), last.Round(time.Microsecond))
	}
	res.fanOutClientCPU = cpuTime() - cpu0
	after, err := scrape(ctx, lt.client, lt.base)
	if err != nil {
		return err
	}
	res.beforeFanOut, res.afterFanOut = first, after
	return nil
}

// churn opens and closes churn/2 short-lived streams, churnConc at a time,
// while the watchers hold on; then it waits for the server and the
// watchers to settle on N and checks that the counts stayed in range.
func (lt *loadTest) churn(ctx context.Context, res *result) error {
	n, total := lt.o.streams, lt.o.churn/2
	res.churnStreams = total
	if total == 0 {
		return nil
	}
	eventsBefore := 0
	for _, w := range lt.watchers {
		w.resetRange()
		eventsBefore += w.snapshot().events
	}
	before, err := scrape(ctx, lt.client, lt.base)
	if err != nil {
		return err
	}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		failed   int
		firstErr error
		seen     violations
		wg       sync.WaitGroup
	)
	cpu0 := cpuTime()
	start := time.Now()
	for range min(lt.o.churnConc, total) {
		wg.Go(func() {
			for int(next.Add(1)) <= total && ctx.Err() == nil {
				err := lt.shortStream(ctx, &mu, &seen)
				if err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	end := time.Now()
	// What each watcher had by the last leave, to count what came after.
	eventsAtEnd := make([]int, len(lt.watchers))
	for i, w := range lt.watchers {
		eventsAtEnd[i] = w.snapshot().events
	}
	res.churnTime = end.Sub(start)
	res.churnClientCPU = cpuTime() - cpu0
	res.churnFailed = failed
	lt.extra.backwards += seen.backwards
	lt.extra.mismatched += seen.mismatched
	lt.extra.malformed += seen.malformed
	if firstErr != nil {
		return fmt.Errorf("%d of %d short-lived streams failed; the first error: %w", failed, total, firstErr)
	}
	lt.logf("churn: %d streams joined and left in %v; waiting for the count to settle on %d", total, res.churnTime.Round(time.Millisecond), n)

	serverAt, err := lt.waitSubscribers(ctx, float64(n), lt.o.settle)
	if err != nil {
		return err
	}
	res.churnServerSettled = serverAt.Sub(end)
	if err := waitShowing(ctx, lt.watchers, n, lt.o.settle); err != nil {
		return err
	}
	// Nothing may move after this: a late event would be a wrong count.
	settled := latestChange(lt.watchers)
	if err := sleep(ctx, stableWindow); err != nil {
		return err
	}
	moved := 0
	for _, w := range lt.watchers {
		if !w.showing(n) {
			moved++
		}
	}
	if moved > 0 {
		return fmt.Errorf("%d streams moved off %d within %v of agreeing on it", moved, n, stableWindow)
	}
	if latest := latestChange(lt.watchers); latest.After(settled) {
		return fmt.Errorf("a stream was told a new count %v after all showed %d", latest.Sub(settled), n)
	}
	res.churnAgree = max(0, settled.Sub(end))

	eventsAfter, late := 0, 0
	for i, w := range lt.watchers {
		st := w.snapshot()
		eventsAfter += st.events
		late += st.events - eventsAtEnd[i]
		res.churnLateMax = max(res.churnLateMax, st.events-eventsAtEnd[i])
		// N is a floor: the watchers hold on. There is no such ceiling, as
		// a stream the client closed counts until the server notices.
		if st.lo < n {
			res.churnBelowN++
		}
		res.churnHighest = max(res.churnHighest, st.hi)
	}
	res.churnEventsPerWatcher = float64(eventsAfter-eventsBefore) / float64(n)
	res.churnLateMean = float64(late) / float64(n)
	after, err := scrape(ctx, lt.client, lt.base)
	if err != nil {
		return err
	}
	res.beforeChurn, res.afterChurn = before, after
	lt.logf("churn: every stream shows %d, %v after the last leave", n, res.churnAgree.Round(time.Millisecond))
	return nil
}

// shortStream is one churn stream: it joins, waits for its first count,
// and leaves. Its violations go to seen.
func (lt *loadTest) shortStream(ctx context.Context, mu *sync.Mutex, seen *violations) error {
	w, _, err := openStream(ctx, lt.client, lt.base, lt.tokens[0]) // churn runs against headcount only
	if err != nil {
		return err
	}
	timer := time.NewTimer(lt.o.settle)
	defer timer.Stop()
	select {
	case <-w.first:
	case <-w.done:
	case <-timer.C:
	case <-ctx.Done():
	}
	w.close(closeWait)
	st := w.snapshot()
	mu.Lock()
	seen.add(st)
	mu.Unlock()
	switch {
	case st.readErr != nil:
		return fmt.Errorf("a short-lived stream ended before its first event: %w", st.readErr)
	case st.events == 0:
		return fmt.Errorf("a short-lived stream got no event within %v", lt.o.settle)
	}
	return nil
}

// cleanup closes every stream and waits for the server to hold none. It
// runs after a failed phase too, on its own bounded context.
func (lt *loadTest) cleanup(res *result) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupLimit)
	defer cancel()
	v := lt.extra
	for _, w := range lt.watchers {
		v.add(w.snapshot())
	}
	res.violations = v

	start := time.Now()
	for _, w := range lt.watchers {
		w.stop()
	}
	// One deadline for all readers, so the wait is bounded whatever N is.
	readersBy := start.Add(closeWait)
	stuck := 0
	for _, w := range lt.watchers {
		if !w.waitUntil(readersBy) {
			stuck++
		}
	}
	lt.watchers = nil
	res.readersStuck = stuck
	zeroAt, err := lt.waitSubscribers(ctx, 0, cleanupLimit)
	if err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	res.cleanupZero = zeroAt.Sub(start)
	lt.logf("cleanup: the server holds 0 streams, %v after the client closed them", res.cleanupZero.Round(time.Millisecond))

	// A stream's goroutines finish just after it stops counting: give
	// them time to go before judging the server's goroutine count.
	deadline := time.Now().Add(goroutineWait)
	for {
		final, err := scrape(ctx, lt.client, lt.base)
		if err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		res.final = final
		if res.before == nil || final[mGoroutines] <= res.before[mGoroutines]+goroutineSlack || time.Now().After(deadline) {
			res.goroutinesSettled = time.Since(start)
			return nil
		}
		if err := sleep(ctx, lt.o.metricsPoll); err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
	}
}

// waitSubscribers polls /metrics until headcount_subscribers is want, and
// returns when that was seen.
func (lt *loadTest) waitSubscribers(ctx context.Context, want float64, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		s, err := scrape(ctx, lt.client, lt.base)
		if err != nil {
			return time.Time{}, err
		}
		if s[mSubscribers] == want {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("the server holds %v streams after %v; want %v", s[mSubscribers], limit, want)
		}
		if err := sleep(ctx, lt.o.metricsPoll); err != nil {
			return time.Time{}, err
		}
	}
}

// waitShowing waits until every stream in ws shows n, for at most limit.
func waitShowing(ctx context.Context, ws []*watcher, n int, limit time.Duration) error {
	pending := slices.Clone(ws)
	deadline := time.Now().Add(limit)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		pending = slices.DeleteFunc(pending, func(w *watcher) bool { return w.showing(n) })
		if len(pending) == 0 {
			return nil
		}
		st := pending[0].snapshot()
		if st.readErr != nil {
			return fmt.Errorf("a stream ended while waiting for %d: %w", n, st.readErr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d streams do not show %d after %v (one shows %d at version %d)",
				len(pending), len(ws), n, limit, st.count, st.version)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// latestChange is the latest moment any of ws had its count change.
func latestChange(ws []*watcher) time.Time {
	var t time.Time
	for _, w := range ws {
		if at := w.snapshot().changedAt; at.After(t) {
			t = at
		}
	}
	return t
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
