package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// SetLibraryLogger sends go-redis' own log lines (failed dials, Sentinel
// switching masters, Cluster reloads) through log instead of raw to
// stderr. go-redis keeps one logger for the whole process, so the
// composition root calls this once at start.
func SetLibraryLogger(log *slog.Logger) {
	goredis.SetLogger(libraryLogger{log: log})
}

// libraryLogger is go-redis' Logging interface over slog. Its lines about
// Sentinel's view of the master are news, the rest are complaints.
type libraryLogger struct{ log *slog.Logger }

// Printf logs one go-redis line.
func (l libraryLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "sentinel: new master") || strings.HasPrefix(msg, "sentinel: selected addr") || strings.HasPrefix(msg, "sentinel: discovered new sentinel") {
		level = slog.LevelInfo
	}
	l.log.Log(ctx, level, "go-redis: "+msg, "source", "go-redis")
}
