// Command headcount serves the live count of signed-in subscribers.
// Configuration comes from the environment; see the README.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/handlers"
	"github.com/headcount/headcount/internal/fdlimit"
)

// shutdownGrace bounds how long a stop may take: SPEC allows five seconds.
const shutdownGrace = 4 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "headcount:", err)
		os.Exit(1)
	}
}

// run starts the service and serves until ctx is done, then ends every
// stream and returns. Tests call it in-process with their own environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("unexpected arguments %q: headcount is configured through the environment (see README)", args[1:])
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))

	nofile, err := fdlimit.Raise()
	if err != nil {
		log.Warn("could not raise the open-file limit", "err", err)
	}
	if cfg.MaxStreams < 0 {
		cfg.MaxStreams = config.StreamLimitFor(nofile)
	}

	srv := &handlers.Server{Config: cfg, Logger: log}
	if err := srv.Open(); err != nil {
		return err
	}
	if cfg.DevMode() {
		log.Warn("dev sign-in mode: no GITHUB_KEY is set, so anyone can sign in as any user name through the built-in development provider; set GITHUB_KEY and GITHUB_SECRET for real GitHub sign-in")
	}
	log.Info("headcount listening", "addr", srv.Addr().String(), "url", srv.URL(),
		"dev_sign_in", cfg.DevMode(), "max_streams", cfg.MaxStreams, "max_streams_per_user", cfg.MaxStreamsPerUser, "open_file_limit", nofile)

	<-ctx.Done()
	log.Info("shutting down: ending every stream")
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Close(stopCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
