//go:build pprof

package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// A build with -tags pprof (never the shipped one) serves net/http/pprof
// on HEADCOUNT_PPROF_ADDR (loopback only), for the profiles in
// docs/benchmarks.md:
//
//	go build -tags pprof -o /tmp/headcount-pprof ./cmd/headcount
//	HEADCOUNT_PPROF_ADDR=127.0.0.1:6060 /tmp/headcount-pprof
func init() {
	addr := os.Getenv("HEADCOUNT_PPROF_ADDR")
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go func() { _ = http.ListenAndServe(addr, mux) }()
}
