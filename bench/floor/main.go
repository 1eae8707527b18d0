// Command floor serves the plain r3labs/sse + Echo floor (internal/floor)
// that bench/loadgen measures headcount against. Usage:
//
//	FLOOR_ADDR=127.0.0.1:18081 floor
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/headcount/headcount/internal/fdlimit"
	"github.com/headcount/headcount/internal/floor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv("FLOOR_ADDR")); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// run serves the floor on addr (default 127.0.0.1:18081) until ctx ends.
func run(ctx context.Context, addr string) error {
	if addr == "" {
		addr = "127.0.0.1:18081"
	}
	if _, err := fdlimit.Raise(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return floor.Serve(ctx, ln)
}
