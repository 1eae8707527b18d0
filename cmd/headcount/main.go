// Command headcount serves the live count of signed-in subscribers.
// Configuration comes from the environment; see the README.
//
// This file is the program's one composition root: run builds every part,
// in order, and stops them in order.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/handlers"
	"github.com/headcount/headcount/identity"
	"github.com/headcount/headcount/internal/certwatch"
	"github.com/headcount/headcount/internal/connlimit"
	"github.com/headcount/headcount/internal/deadpeer"
	"github.com/headcount/headcount/internal/fdlimit"
	"github.com/headcount/headcount/internal/wiring"
	"github.com/headcount/headcount/stream"
	"github.com/headcount/headcount/stream/redis"
)

// gcPercent is the garbage collector's target the binary runs with
// unless GOGC says otherwise: a collection once the heap has grown by 200%
// of what the last one left, not Go's 100%. A subscriber holds a small
// heap (0.4x the plain r3labs server's) and its connect leaves about twice
// that in garbage, so at 100% a ramp of 19,000 reconnections ran 19
// collections and spent a fifth of its CPU in them; at 200% the ramp
// costs about 13% less CPU for about 5% more memory (docs/benchmarks.md).
const gcPercent = 200

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "headcount:", err)
		if errors.As(err, new(usageError)) {
			writeUsage(os.Stderr)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run starts the service and serves until ctx is done, then ends every
// stream and returns. environ is the environment ("NAME=value" entries, as
// os.Environ gives them); tests call run in-process with their own.
func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	switch act, err := parseArgs(args); {
	case err != nil:
		return err
	case act == showHelp:
		writeHelp(stdout)
		return nil
	case act == showVersion:
		fmt.Fprintln(stdout, version())
		return nil
	}
	// Before config.Load, which derives the default stream limit from the
	// open-file limit in force.
	_, raiseErr := fdlimit.Raise()
	cfg, err := config.Load(lookup(environ))
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	// go-redis logs through one process-wide logger: make it ours, once.
	redis.SetLibraryLogger(log)
	if unknown := config.Unknown(environ); len(unknown) > 0 {
		log.Warn("unknown HEADCOUNT_* variables are ignored (misspelt? headcount --help lists every variable)", "variables", strings.Join(unknown, ","))
	}
	if raiseErr != nil {
		log.Warn("could not raise the open-file limit", "err", raiseErr)
	}
	var certs *certwatch.Watcher
	if cfg.TLS() {
		if certs, err = certwatch.New(cfg.TLSCert, cfg.TLSKey, log); err != nil {
			return err
		}
	}

	// Listen first: in dev sign-in mode the provider's URLs carry the port.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("HEADCOUNT_METRICS_ADDR: listen on %s: %w", cfg.MetricsAddr, err)
		}
		defer metricsLn.Close()
	}
	publicURL := cfg.PublicURL(ln.Addr())

	counter, closeCounter, err := openCounter(cfg, log)
	if err != nil {
		return err
	}
	hub := stream.NewHub(wiring.HubConfig(cfg, counter, log))
	pages, err := handlers.NewPages(cfg.DevMode())
	if err != nil {
		return errors.Join(err, hub.Close(context.Background()), closeCounter())
	}
	id, err := identity.New(cfg, wiring.Mount(publicURL, ln.Addr(), pages, certwatch.Current(certs)))
	if err != nil {
		return errors.Join(err, hub.Close(context.Background()), closeCounter())
	}
	defer id.Close()
	revocations, revoker, closeRevocations, err := wiring.OpenRevocations(cfg, log)
	if err != nil {
		return errors.Join(err, hub.Close(context.Background()), closeCounter())
	}
	metrics := handlers.NewMetrics(hub)
	handler := handlers.NewServer(wiring.Deps(cfg, wiring.Parts{
		Logger:      log,
		PublicURL:   publicURL,
		Hub:         hub,
		Identity:    id,
		Pages:       pages,
		Metrics:     metrics,
		Revocations: revocations,
		Revoker:     revoker,
	}))

	srv := handlers.NewHTTPServer(handler, log)
	conns := connlimit.Listen(deadpeer.Listen(ln, cfg.DeadPeerTimeout), cfg.MaxOtherConns)
	metrics.WatchConnections(conns)
	served := make(chan error, 1)
	if certs != nil {
		srv.TLSConfig = certwatch.ServerConfig(certs)
		go func() { served <- srv.ServeTLS(conns, "", "") }()
	} else {
		go func() { served <- srv.Serve(conns) }()
	}
	var metricsSrv *http.Server
	metricsServed := make(chan error, 1)
	if metricsLn != nil {
		metricsSrv = handlers.NewMetricsServer(metrics, log)
		go func() { metricsServed <- metricsSrv.Serve(metricsLn) }()
	}
	// The certificate watcher runs until the stop begins (ctx is done).
	watched := make(chan struct{})
	if certs != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			defer close(watched)
			certs.Run(ctx, hup)
		}()
	} else {
		close(watched)
	}
	if cfg.DevMode() {
		log.Warn("dev sign-in mode: no GITHUB_KEY is set, so anyone can sign in as any user name through the built-in development provider; set GITHUB_KEY and GITHUB_SECRET for real GitHub sign-in")
	}
	log.Info("headcount listening", startupAttrs(cfg, ln.Addr(), metricsLn, publicURL)...)

	<-ctx.Done()
	log.Info("shutting down: ending every stream")
	<-watched
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = shutdown(stopCtx, log, srv, served, hub, closeCounter)
	if metricsSrv != nil {
		// After the main server: a scrape during the stop still answers.
		err = errors.Join(err, metricsSrv.Shutdown(stopCtx))
		if serveErr := <-metricsServed; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
	}
	// Last: sign-outs still waiting for Redis get what time is left. Like
	// the count's removal, a Redis that does not answer is logged, not an
	// exit code: the stop itself went well.
	if rerr := closeRevocations(stopCtx); rerr != nil {
		log.Warn("sign-outs that never reached Redis hold nowhere now; the other instances never learn them", "err", rerr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// lookup is getenv over environ: the last entry for a name wins, as in a
// shell.
func lookup(environ []string) func(string) string {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return func(k string) string { return vars[k] }
}

// newLogger is the program's logger: HEADCOUNT_LOG_FORMAT's format at
// HEADCOUNT_LOG_LEVEL, to stdout.
func newLogger(cfg config.Config, stdout io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(stdout, opts))
	}
	return slog.New(slog.NewTextHandler(stdout, opts))
}

// startupAttrs names every setting an operator checks after a start: where
// it listens and under which URL, TLS, dev sign-in, where the count lives
// (the Redis host only: never its password), metrics and the limits.
func startupAttrs(cfg config.Config, addr net.Addr, metricsLn net.Listener, publicURL string) []any {
	redisHost := "none (count in memory, one instance)"
	if cfg.RedisURL != "" {
		redisHost = "unparsable"
		if u, err := url.Parse(cfg.RedisURL); err == nil {
			redisHost = u.Scheme + "://" + u.Host
		}
	}
	metricsAt := "/metrics on addr"
	if metricsLn != nil {
		metricsAt = metricsLn.Addr().String()
	}
	return []any{
		"addr", addr.String(),
		"url", publicURL,
		"tls", cfg.TLS(),
		"dev_sign_in", cfg.DevMode(),
		"redis", redisHost,
		"metrics", metricsAt,
		"trusted_proxies", len(cfg.TrustedProxies),
		"heartbeat", cfg.Heartbeat,
		"max_streams", cfg.MaxStreams,
		"max_streams_per_user", cfg.MaxStreamsPerUser,
		"open_file_limit", cfg.OpenFileLimit,
		"log_level", cfg.LogLevel.String(),
	}
}

// openCounter returns where the count lives: in this process, or in the
// Redis of HEADCOUNT_REDIS_URL, shared with every instance on it. The
// close function takes this instance's share out of a shared count.
func openCounter(cfg config.Config, log *slog.Logger) (stream.Counter, func() error, error) {
	if cfg.RedisURL == "" {
		return stream.Memory{}, func() error { return nil }, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), wiring.RedisConnectTimeout)
	defer cancel()
	shared, err := redis.New(ctx, cfg.RedisURL, redis.Options{Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("HEADCOUNT_REDIS_URL: %w", err)
	}
	return shared, shared.Close, nil
}

// shutdown stops the server within ctx, in the order that lets every part
// finish: http.Server.Shutdown closes the listener at once but then waits
// for every connection to go idle, which a stream never does, so the hub
// ends the streams meanwhile; then the count store takes this instance's
// share out (after the hub, so its last Store has happened). A removal
// that fails or hangs (Redis down) is logged, not returned: SPEC wants
// exit 0, and the others drop this instance's share by themselves once
// its connection or its deadline is gone.
func shutdown(ctx context.Context, log *slog.Logger, srv *http.Server, served <-chan error, hub *stream.Hub, closeCounter func() error) error {
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	hubErr := hub.Close(ctx)
	closed := make(chan error, 1)
	go func() { closed <- closeCounter() }()
	select {
	case err := <-closed:
		if err != nil {
			log.Warn("could not remove this instance's share of the count; the other instances drop it by themselves", "err", err)
		}
	case <-ctx.Done():
		log.Warn("removing this instance's share of the count took too long; the other instances drop it by themselves", "err", ctx.Err())
	}
	err := <-shut
	if serveErr := <-served; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return errors.Join(hubErr, err)
}
