package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// figures are the numbers of one run that are compared with the floor's.
type figures struct {
	rss, heap, stacks, goroutines float64 // per subscriber, after the ramp
	cpuPerEvent                   float64 // server CPU seconds per event sent in the fan-out
	connect, agree                time.Duration
	joinP50, joinP99, leaveP99    time.Duration
	// joinRoundP99 and leaveRoundP99 are the median over the rounds of
	// each round's own p99: a round is 1/rounds of the samples, so one
	// slow round (a collection, the machine's hiccup) sets the p99 of them
	// all, and this says whether it was one round or every one.
	joinRoundP99, leaveRoundP99 time.Duration
	exodusAgree, exodusClosed   time.Duration // zero without an exodus
}

// figuresOf reads the compared numbers out of r; ok is false when the
// ramp or the fan-out did not complete.
func figuresOf(r *result) (f figures, ok bool) {
	if r.afterRamp == nil || r.afterFanOut == nil {
		return f, false
	}
	n := float64(r.o.streams)
	per := func(name string) float64 { return (r.afterRamp[name] - r.before[name]) / n }
	f.rss, f.heap, f.stacks, f.goroutines = per(mRSS), per(mHeapInuse), per(mStackInuse), per(mGoroutines)
	if events := r.afterFanOut[mEventsSent] - r.beforeFanOut[mEventsSent]; events > 0 {
		f.cpuPerEvent = (r.afterFanOut[mCPU] - r.beforeFanOut[mCPU]) / events
	}
	f.connect, f.agree = r.rampOpen, r.rampAgree
	p := func(ds []time.Duration, q float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return percentile(s, q)
	}
	f.joinP50, f.joinP99, f.leaveP99 = p(r.joinFromHeaders, 50), p(r.joinFromHeaders, 99), p(r.leave, 99)
	f.joinRoundP99, f.leaveRoundP99 = roundP99(r.joinFromHeaders, r.o.streams), roundP99(r.leave, r.o.streams)
	if r.exodusLeft > 0 {
		f.exodusAgree, f.exodusClosed = r.exodusAgree, r.exodusClosed
	}
	return f, true
}

// roundP99 is the median over rounds of each round's p99, for samples
// that come n to a round, in round order.
func roundP99(samples []time.Duration, n int) time.Duration {
	var p99s []time.Duration
	for i := 0; n > 0 && i+n <= len(samples); i += n {
		round := slices.Clone(samples[i : i+n])
		slices.Sort(round)
		p99s = append(p99s, percentile(round, 99))
	}
	return median(p99s)
}

// writeRatios prints headcount's figures beside the floor's, measured in
// the same invocation, and their ratio (below 1: headcount is cheaper or
// faster).
func writeRatios(w io.Writer, floor, hc *result) {
	f, okF := figuresOf(floor)
	h, okH := figuresOf(hc)
	fmt.Fprintf(w, "\n%s%d (same invocation)\n\n", ratioHeading, hc.o.streams)
	if !okF || !okH {
		fmt.Fprintln(w, "Not compared: a ramp or fan-out did not complete.")
		return
	}
	fmt.Fprintln(w, "| measure | floor | headcount | headcount / floor |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	row := func(name, a, b string, x, y float64) {
		ratio := "-"
		if x > 0 {
			ratio = fmt.Sprintf("**%.2fx**", y/x)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, a, b, ratio)
	}
	bytes := func(name string, x, y float64) { row(name, fmtBytes(x), fmtBytes(y), x, y) }
	dur := func(name string, x, y time.Duration) { row(name, fmtDur(x), fmtDur(y), float64(x), float64(y)) }
	bytes("RSS per subscriber", f.rss, h.rss)
	bytes("Go heap per subscriber", f.heap, h.heap)
	bytes("goroutine stacks per subscriber", f.stacks, h.stacks)
	row("goroutines per subscriber", fmt.Sprintf("%.2f", f.goroutines), fmt.Sprintf("%.2f", h.goroutines), f.goroutines, h.goroutines)
	row("server CPU per event sent (fan-out)", fmt.Sprintf("%.1f µs", f.cpuPerEvent*1e6), fmt.Sprintf("%.1f µs", h.cpuPerEvent*1e6),
		f.cpuPerEvent, h.cpuPerEvent)
	dur("join → everyone, p50 (from the new stream's headers)", f.joinP50, h.joinP50)
	dur("join → everyone, p99", f.joinP99, h.joinP99)
	dur("leave → everyone, p99 (from the close)", f.leaveP99, h.leaveP99)
	dur("join → everyone, p99 of each round (median of rounds)", f.joinRoundP99, h.joinRoundP99)
	dur("leave → everyone, p99 of each round (median of rounds)", f.leaveRoundP99, h.leaveRoundP99)
	dur("time to connect all N (first connect → last headers)", f.connect, h.connect)
	dur("first connect → everyone shows N", f.agree, h.agree)
	if f.exodusAgree > 0 && h.exodusAgree > 0 {
		dur(fmt.Sprintf("exodus: all but %d leave at once → the rest agree", hc.o.exodusKeep), f.exodusAgree, h.exodusAgree)
		dur("exodus: of which the load generator's own closes", f.exodusClosed, h.exodusClosed)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The floor's join and leave run from the load generator's POST /publish, sent the moment the new stream's headers arrive (or the stream is closed), and its exodus's count once the load generator has closed every leaving stream: it counts nothing itself. Its events sent are its subscribers at each publish.")
}
