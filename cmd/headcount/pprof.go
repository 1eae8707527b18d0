//go:build pprof

package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// A build with -tags pprof (never the shipped one) serves net/http/pprof
// on PPROF_ADDR (loopback only), for the profiles in docs/benchmarks.md:
//
//	go build -tags pprof -o /tmp/headcount-pprof ./cmd/headcount
//	PPROF_ADDR=127.0.0.1:6060 /tmp/headcount-pprof
//
// The name has no HEADCOUNT_ prefix on purpose: it is no setting of
// headcount (config does not know it, so run would warn of an unknown
// HEADCOUNT_* variable). It is read from the process's environment, not
// run's, and the server lives until the process exits: a profiling aid
// for a binary run by hand, not part of run.
func init() {
	addr := os.Getenv("PPROF_ADDR")
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go func() { _ = http.ListenAndServe(addr, mux) }()
}
