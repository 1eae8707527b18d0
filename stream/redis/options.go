package redis

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Defaults used by New for the zero values of Options.
const (
	// DefaultPrefix starts every key and the channel name, so several
	// deployments can share one Redis by choosing different prefixes.
	DefaultPrefix = "headcount"
	// DefaultInstanceTTL is how long an instance counts without refreshing:
	// short, because the SPEC wants a dead instance's subscribers gone from
	// the count within seconds, yet long enough that a brief Redis hiccup
	// does not drop a live instance.
	DefaultInstanceTTL = 6 * time.Second
	// DefaultCheck is how often an instance looks for dead ones. With
	// DefaultGrace, a dead process leaves the count within about 1.5 s.
	DefaultCheck = 400 * time.Millisecond
	// DefaultGrace is how long an instance's liveness channel may go
	// without a subscriber before the instance counts as dead: longer than
	// a live instance needs to subscribe again after its connection broke.
	DefaultGrace = 500 * time.Millisecond
)

// Options tunes a Counter; the zero value of every field is usable.
type Options struct {
	// Prefix starts every key and the change channel; empty means
	// DefaultPrefix. Instances share a count exactly when they share a
	// Redis and a prefix.
	Prefix string
	// InstanceTTL is how long this instance's count stays in the global
	// count after its last refresh, if nothing shows it dead sooner (a
	// frozen process or a cut network leave their connection open on
	// Redis' side). Zero means DefaultInstanceTTL.
	InstanceTTL time.Duration
	// Refresh is how often this instance renews its count and drops the
	// counts of dead instances; it must be shorter than InstanceTTL, so a
	// live instance never expires. Zero means InstanceTTL / 3, which survives
	// two lost refreshes in a row.
	Refresh time.Duration
	// Check is how often this instance drops the dead ones; zero means
	// DefaultCheck, or Refresh when that is shorter.
	Check time.Duration
	// Grace is how long an instance's connection may be gone before it
	// counts as dead; zero means DefaultGrace.
	Grace time.Duration
	// InstanceID names this instance in Redis; empty means a fresh random
	// one. Two live instances must never share an ID, or they overwrite
	// each other's count, which is why the default is random.
	InstanceID string
	// Logger receives the counter's rare complaints (Redis unreachable and
	// back, dead instances dropped); nil discards them.
	Logger *slog.Logger

	// plainPubSub makes the counter use plain Pub/Sub even where the
	// server has sharded Pub/Sub, so tests can run that path too.
	plainPubSub bool
}

// withDefaults returns opts with every zero field replaced by its default,
// or an error naming a field whose value cannot work.
func (opts Options) withDefaults() (Options, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	switch {
	case opts.InstanceTTL < 0:
		return opts, fmt.Errorf("redis: InstanceTTL %v is negative", opts.InstanceTTL)
	case opts.InstanceTTL == 0:
		opts.InstanceTTL = DefaultInstanceTTL
	case opts.InstanceTTL < time.Millisecond:
		// Deadlines are kept in whole milliseconds of Redis time.
		return opts, fmt.Errorf("redis: InstanceTTL %v is shorter than a millisecond", opts.InstanceTTL)
	}
	switch {
	case opts.Refresh < 0:
		return opts, fmt.Errorf("redis: Refresh %v is negative", opts.Refresh)
	case opts.Refresh == 0:
		opts.Refresh = opts.InstanceTTL / 3
	case opts.Refresh >= opts.InstanceTTL:
		return opts, fmt.Errorf("redis: Refresh %v must be shorter than InstanceTTL %v, or a live instance expires between refreshes", opts.Refresh, opts.InstanceTTL)
	}
	switch {
	case opts.Check < 0:
		return opts, fmt.Errorf("redis: Check %v is negative", opts.Check)
	case opts.Check == 0:
		opts.Check = min(DefaultCheck, opts.Refresh)
	}
	switch {
	case opts.Grace < 0:
		return opts, fmt.Errorf("redis: Grace %v is negative", opts.Grace)
	case opts.Grace == 0:
		opts.Grace = DefaultGrace
	}
	if opts.InstanceID == "" {
		opts.InstanceID = randomID()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts, nil
}

// randomID returns an instance ID that names the host, for whoever reads
// the hash in redis-cli, and ends in 128 random bits, so restarts and
// replicas on one host never collide.
func randomID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "instance"
	}
	return host + "-" + rand.Text()
}
