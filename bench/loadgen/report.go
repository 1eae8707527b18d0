package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// result is what one run measured. Durations are as the load generator saw
// them: every arrival time is stamped by the goroutine reading the stream.
type result struct {
	o options

	// Ramp: first connect until the last response headers; until every
	// stream shows N.
	rampOpen, rampAgree time.Duration
	rampClientCPU       time.Duration

	// Fan-out: one sample per watcher and round. joinFromHeaders starts when
	// the new stream's response headers arrived, joinFromRequest when its
	// request was made, leave when the client closed the new stream.
	joinFromHeaders, joinFromRequest, leave []time.Duration
	// joinLast and leaveLast are each round's slowest watcher;
	// probeFirst is each new stream's own first event after its headers,
	// probeHeaders the time from its request to its response headers.
	joinLast, leaveLast, probeFirst, probeHeaders []time.Duration
	fanOutClientCPU                               time.Duration

	// Churn.
	churnStreams, churnFailed int
	churnTime                 time.Duration
	churnClientCPU            time.Duration
	churnServerSettled        time.Duration // last leave until the server holds N
	churnAgree                time.Duration // last leave until every watcher shows N
	churnEventsPerWatcher     float64
	// churnLateMean and churnLateMax are the count events a watcher
	// received after the last leave: what was still on its way.
	churnLateMean float64
	churnLateMax  int
	churnBelowN   int // watchers that saw a count below N
	churnHighest  int // the highest count any watcher saw

	// Exodus: how many watchers left at once, and from their close until
	// every one who stayed showed the new count.
	exodusLeft   int
	exodusAgree  time.Duration
	exodusClosed time.Duration // the load generator's closes alone

	// Cleanup.
	readersStuck      int
	cleanupZero       time.Duration // client closed everything until the server holds 0
	goroutinesSettled time.Duration // client closed everything until the final scrape

	violations violations

	// /metrics scrapes at the edges of the phases.
	before, afterRamp, beforeFanOut, afterFanOut, beforeChurn, afterChurn, final sample
}

// check returns an error naming every correctness check that failed.
func (r *result) check() error {
	var errs []error
	v := r.violations
	if v.backwards > 0 {
		errs = append(errs, fmt.Errorf("%d events had a lower id than the event before them", v.backwards))
	}
	if v.mismatched > 0 {
		errs = append(errs, fmt.Errorf("%d events repeated an id with another count", v.mismatched))
	}
	if v.malformed > 0 {
		errs = append(errs, fmt.Errorf("%d events did not parse", v.malformed))
	}
	if v.dropped > 0 {
		errs = append(errs, fmt.Errorf("%d streams were ended by the server", v.dropped))
	}
	if r.churnBelowN > 0 {
		errs = append(errs, fmt.Errorf("%d watchers saw a count below N during the churn", r.churnBelowN))
	}
	if r.afterChurn != nil && r.afterChurn[mUserCount] != float64(r.o.streams) {
		errs = append(errs, fmt.Errorf("after the churn headcount_user_count is %v, want %d", r.afterChurn[mUserCount], r.o.streams))
	}
	if r.final == nil || r.final[mSubscribers] != 0 {
		errs = append(errs, errors.New("headcount_subscribers did not return to 0"))
	} else if g, g0 := r.final[mGoroutines], r.before[mGoroutines]; g > g0+goroutineSlack {
		errs = append(errs, fmt.Errorf("the server has %.0f goroutines %v after the cleanup, %.0f before the run", g, goroutineWait, g0))
	}
	if r.readersStuck > 0 {
		errs = append(errs, fmt.Errorf("%d stream readers did not stop after close", r.readersStuck))
	}
	return errors.Join(errs...)
}

// writeMarkdown prints the detailed table, then the one-line summary table.
func (r *result) writeMarkdown(w io.Writer) {
	n := r.o.streams
	var rows [][2]string
	add := func(k, v string) { rows = append(rows, [2]string{k, v}) }
	na := "not measured (phase did not complete)"

	server := "headcount"
	if r.o.floor {
		server = "the floor (bench/floor)"
	}
	by := ""
	if r.o.people > 1 {
		by = fmt.Sprintf(" held by %d people", r.o.people)
	}
	fmt.Fprintf(w, "\n### %s: N = %d streams%s, churn %d\n\n", server, n, by, r.o.churn)
	fmt.Fprintf(w, "Sources %s; ramp concurrency %d; %d fan-out rounds with %v pauses; churn concurrency %d.\n\n",
		ipList(r.o), r.o.rampConc, r.o.rounds, r.o.pause, r.o.churnConc)

	if r.afterRamp != nil {
		add("ramp: streams open (last response headers)", fmt.Sprintf("%d in %s = **%.0f streams/s**",
			n, fmtDur(r.rampOpen), float64(n)/r.rampOpen.Seconds()))
		add("ramp: every stream shows N", fmt.Sprintf("%s after the first connect (%s after the last headers)",
			fmtDur(r.rampAgree), fmtDur(r.rampAgree-r.rampOpen)))
		add("ramp: CPU used (server / loadgen)", fmt.Sprintf("%.2f s / %.2f s",
			r.afterRamp[mCPU]-r.before[mCPU], r.rampClientCPU.Seconds()))
		add("ramp: server events sent / count changes", fmt.Sprintf("%.0f / %.0f",
			r.afterRamp[mEventsSent]-r.before[mEventsSent], r.afterRamp[mChanges]-r.before[mChanges]))
		add("memory after ramp: RSS", perSub(r.before, r.afterRamp, mRSS, n, true))
		add("memory after ramp: Go heap in use", perSub(r.before, r.afterRamp, mHeapInuse, n, true))
		add("memory after ramp: goroutine stacks", perSub(r.before, r.afterRamp, mStackInuse, n, true))
		add("memory after ramp: goroutines", perSub(r.before, r.afterRamp, mGoroutines, n, false))
		add("server open files after ramp", perSub(r.before, r.afterRamp, mOpenFDs, n, false))
	} else {
		add("ramp", na)
	}
	if r.afterFanOut != nil {
		add("memory after fan-out: RSS", perSub(r.before, r.afterFanOut, mRSS, n, true))
		add("memory after fan-out: Go heap in use", perSub(r.before, r.afterFanOut, mHeapInuse, n, true))
		k := len(r.joinLast)
		add(fmt.Sprintf("join → N+1 at each watcher, from new stream's headers (%d×%d)", k, n), pct(r.joinFromHeaders))
		add(fmt.Sprintf("join → N+1 at each watcher, from new stream's request (%d×%d)", k, n), pct(r.joinFromRequest))
		add(fmt.Sprintf("leave → N at each watcher, from client close (%d×%d)", k, n), pct(r.leave))
		add("slowest watcher per round: join / leave (median of rounds)", fmt.Sprintf("%s / %s",
			fmtDur(median(r.joinLast)), fmtDur(median(r.leaveLast))))
		add("new stream: request → headers / headers → its own first event (median of rounds)",
			fmt.Sprintf("%s / %s", fmtDur(median(r.probeHeaders)), fmtDur(median(r.probeFirst))))
		add("new stream: request → headers, each round", durList(r.probeHeaders))
		events := r.afterFanOut[mEventsSent] - r.beforeFanOut[mEventsSent]
		cpu := r.afterFanOut[mCPU] - r.beforeFanOut[mCPU]
		add("fan-out: CPU (server / loadgen), events sent", fmt.Sprintf("%.2f s / %.2f s, %.0f events: server %.1f µs per event",
			cpu, r.fanOutClientCPU.Seconds(), events, cpu/events*1e6))
	} else {
		add("fan-out", na)
	}
	if r.afterChurn != nil {
		changes := r.afterChurn[mChanges] - r.beforeChurn[mChanges]
		add("churn: short-lived streams (join, first event, leave)", fmt.Sprintf("%d in %s = %.0f joins+leaves/s",
			r.churnStreams, fmtDur(r.churnTime), float64(2*r.churnStreams)/r.churnTime.Seconds()))
		add("churn: count changes broadcast / events per watcher", fmt.Sprintf("%.0f / %.1f (for %d joins+leaves)",
			changes, r.churnEventsPerWatcher, 2*r.churnStreams))
		add("churn: CPU used (server / loadgen)", fmt.Sprintf("%.2f s / %.2f s",
			r.afterChurn[mCPU]-r.beforeChurn[mCPU], r.churnClientCPU.Seconds()))
		add("churn: server holds N again after the last leave", fmtDur(r.churnServerSettled))
		add("churn: **every watcher shows the true count** after the last leave", "**"+fmtDur(r.churnAgree)+"**")
		add("churn: events a watcher received after the last leave (mean / max)", fmt.Sprintf("%.2f / %d", r.churnLateMean, r.churnLateMax))
		add("churn: watchers that saw a count below N / highest count seen", fmt.Sprintf("%d / %d", r.churnBelowN, r.churnHighest))
		add("churn: headcount_user_count afterwards", fmt.Sprintf("%.0f (want %d)", r.afterChurn[mUserCount], n))
	} else if r.o.churn/2 > 0 {
		add("churn", na)
	}
	if r.exodusLeft > 0 {
		add(fmt.Sprintf("exodus: %d leave at once; **the %d who stay show %d** after", r.exodusLeft, r.o.exodusKeep, r.o.exodusKeep),
			"**"+fmtDur(r.exodusAgree)+"**")
		add("exodus: of which the load generator's own closes", fmtDur(r.exodusClosed))
	}
	v := r.violations
	add("**versions that went backwards** (all streams, whole run)", fmt.Sprintf("**%d**", v.backwards))
	add("same id with another count / unparsable events", fmt.Sprintf("%d / %d", v.mismatched, v.malformed))
	add("streams ended by the server before the cleanup", fmt.Sprint(v.dropped))
	if r.final != nil {
		add("cleanup: headcount_subscribers back to 0", fmt.Sprintf("%.0f, %s after the client closed every stream",
			r.final[mSubscribers], fmtDur(r.cleanupZero)))
		add("cleanup: server goroutines afterwards", fmt.Sprintf("%.0f (%.0f before the run), %s after the client closed every stream",
			r.final[mGoroutines], r.before[mGoroutines], fmtDur(r.goroutinesSettled)))
		add("cleanup: server RSS / heap in use afterwards", fmt.Sprintf("%s / %s", fmtBytes(r.final[mRSS]), fmtBytes(r.final[mHeapInuse])))
	} else {
		add("cleanup", "did not complete")
	}

	fmt.Fprintln(w, "| measure | value |")
	fmt.Fprintln(w, "| --- | --- |")
	for _, row := range rows {
		fmt.Fprintf(w, "| %s | %s |\n", row[0], row[1])
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, summaryHeader)
	fmt.Fprintln(w, r.summaryRow())
}

// summaryHeader heads the one-row table, so rows of several runs stack.
const summaryHeader = "| N | connect rate | ramp: all show N | join p50 / p99 / max | leave p50 / p99 / max | RSS / sub | heap / sub | goroutines / sub | churn: all true after | backwards | subs after |\n" +
	"| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"

// summaryRow is this run in one row; a dash marks what was not measured.
func (r *result) summaryRow() string {
	c := []string{fmt.Sprint(r.o.streams)}
	n := float64(r.o.streams)
	if r.afterRamp != nil {
		c = append(c, fmt.Sprintf("%.0f/s", n/r.rampOpen.Seconds()), fmtDur(r.rampAgree))
	} else {
		c = append(c, "-", "-")
	}
	if r.afterFanOut != nil {
		c = append(c, pct3(r.joinFromHeaders), pct3(r.leave))
	} else {
		c = append(c, "-", "-")
	}
	if r.afterRamp != nil {
		c = append(c,
			fmtBytes((r.afterRamp[mRSS]-r.before[mRSS])/n),
			fmtBytes((r.afterRamp[mHeapInuse]-r.before[mHeapInuse])/n),
			fmt.Sprintf("%.2f", (r.afterRamp[mGoroutines]-r.before[mGoroutines])/n))
	} else {
		c = append(c, "-", "-", "-")
	}
	if r.afterChurn != nil {
		c = append(c, fmtDur(r.churnAgree))
	} else {
		c = append(c, "-")
	}
	c = append(c, fmt.Sprint(r.violations.backwards))
	if r.final != nil {
		c = append(c, fmt.Sprintf("%.0f", r.final[mSubscribers]))
	} else {
		c = append(c, "-")
	}
	return "| " + strings.Join(c, " | ") + " |"
}

// durList prints ds in order, comma-separated.
func durList(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmtDur(d)
	}
	return strings.Join(s, ", ")
}

// ipList prints the source addresses of o.
func ipList(o options) string {
	s := make([]string, len(o.sources))
	for i, ip := range o.sources {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}

// perSub describes how a metric moved and what that is per subscriber.
func perSub(before, after sample, name string, n int, bytes bool) string {
	b, a := before[name], after[name]
	if bytes {
		return fmt.Sprintf("%s → %s: **%s per subscriber**", fmtBytes(b), fmtBytes(a), fmtBytes((a-b)/float64(n)))
	}
	return fmt.Sprintf("%.0f → %.0f: **%.2f per subscriber**", b, a, (a-b)/float64(n))
}

// percentile returns the nearest-rank p-th percentile of sorted ds.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// median is the nearest-rank median of ds, in any order.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return percentile(s, 50)
}

// pct is the p50/p90/p99/max line of ds (and the min when it is negative,
// which a join can be: the count may reach others before the joiner's headers).
func pct(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	out := fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s", fmtDur(percentile(s, 50)), fmtDur(percentile(s, 90)),
		fmtDur(percentile(s, 99)), fmtDur(s[len(s)-1]))
	if s[0] < 0 {
		out += fmt.Sprintf(" (min %s)", fmtDur(s[0]))
	}
	return out
}

// pct3 is the short p50 / p99 / max form of ds.
func pct3(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%s / %s / %s", fmtDur(percentile(s, 50)), fmtDur(percentile(s, 99)), fmtDur(s[len(s)-1]))
}

// fmtDur prints d with three significant digits in a fitting unit.
func fmtDur(d time.Duration) string {
	a := d
	if a < 0 {
		a = -a
	}
	switch {
	case a >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case a >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

// fmtBytes prints b in KiB or MiB.
func fmtBytes(b float64) string {
	a := b
	if a < 0 {
		a = -a
	}
	switch {
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}
