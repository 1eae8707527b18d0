package stream

import (
	"log/slog"
	"time"
)

// Defaults used by NewHub for the zero values of Config.
const (
	DefaultWriteTimeout = 10 * time.Second
	DefaultRetry        = 2 * time.Second
	DefaultCoalesce     = 25 * time.Millisecond
	DefaultLeaveGrace   = 250 * time.Millisecond
)

// Config holds what a Hub needs; the zero value of every field is usable.
type Config struct {
	// Counter is where the count lives; nil keeps it in memory (one instance).
	Counter Counter
	// Heartbeat is the interval of the comment keep-alives; zero sends none.
	// It has no default here: the program's is HEADCOUNT_HEARTBEAT's, which
	// config resolves.
	Heartbeat time.Duration
	// MaxStreams caps the streams this instance holds at once; zero means no limit.
	MaxStreams int
	// MaxStreamsPerUser caps the streams one user holds at once; zero means no limit.
	MaxStreamsPerUser int
	// WriteTimeout bounds every write to a subscriber, so a client that stops
	// reading is dropped instead of holding its stream forever; zero means
	// DefaultWriteTimeout. (One that falls dropDepth events behind is
	// dropped sooner, whatever the timeout: see broadcast.go.)
	WriteTimeout time.Duration
	// Retry is the reconnection delay suggested to clients with the first
	// event (the SSE "retry:" field); zero means DefaultRetry.
	Retry time.Duration
	// Coalesce is the least time between two broadcasts: changes inside it
	// are merged into one event, so a burst of joins costs a few broadcasts,
	// not one per join. With very many subscribers the hub stretches it by
	// the measured cost of a broadcast (broadcast.go). Zero means
	// DefaultCoalesce; a negative value turns merging and pacing off
	// (benchmarks, tests).
	Coalesce time.Duration
	// CountOnly keeps identities in: no "user" events are sent and Online
	// lists nobody (HEADCOUNT_PRESENCE=count). The counts still flow.
	CountOnly bool
	// LeaveGrace is how long a person whose last stream ended still
	// counts as online, so one who reloads a page or moves to another
	// instance is not announced as leaving and coming back. Zero means
	// DefaultLeaveGrace; a negative value announces at once.
	LeaveGrace time.Duration
	// Logger receives the hub's rare complaints (a failing Counter); nil discards them.
	Logger *slog.Logger
}

// withDefaults returns cfg with every zero field replaced by its default.
func (cfg Config) withDefaults() Config {
	if cfg.Counter == nil {
		cfg.Counter = Memory{}
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	switch {
	case cfg.Coalesce == 0:
		cfg.Coalesce = DefaultCoalesce
	case cfg.Coalesce < 0:
		cfg.Coalesce = 0
	}
	switch {
	case cfg.LeaveGrace == 0:
		cfg.LeaveGrace = DefaultLeaveGrace
	case cfg.LeaveGrace < 0:
		cfg.LeaveGrace = 0
	}
	if cfg.MaxStreams < 0 {
		cfg.MaxStreams = 0
	}
	if cfg.MaxStreamsPerUser < 0 {
		cfg.MaxStreamsPerUser = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}
