package node

import (
	"context"
	"log/slog"
	"strings"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// slogAdapter sends CometBFT's logs to slog. CometBFT logs every block at
// info level; those go to debug unless the node asked for more.
type slogAdapter struct {
	l     *slog.Logger
	level slog.Level // the level CometBFT's Info maps to
	min   slog.Level
}

func newCometLogger(l *slog.Logger, level string) cmtlog.Logger {
	a := slogAdapter{l: l.With("module", "cometbft"), level: slog.LevelDebug, min: slog.LevelError}
	switch level {
	case "debug":
		a.min = slog.LevelDebug
	case "info":
		a.min, a.level = slog.LevelInfo, slog.LevelInfo
	}
	return a
}

func (a slogAdapter) log(lvl slog.Level, msg string, kv []any) {
	if lvl < a.min {
		return
	}
	a.l.Log(context.Background(), lvl, msg, kv...)
}

func (a slogAdapter) Debug(msg string, kv ...any) { a.log(slog.LevelDebug, msg, kv) }
func (a slogAdapter) Info(msg string, kv ...any)  { a.log(a.level, msg, kv) }
func (a slogAdapter) Error(msg string, kv ...any) {
	lvl := slog.LevelError
	if shutdownNoise(msg, kv) {
		lvl = slog.LevelDebug
	}
	a.log(lvl, msg, kv)
}

// shutdownNoise recognises what CometBFT logs as errors while it stops
// normally (listeners closing under their accept loops).
func shutdownNoise(msg string, kv []any) bool {
	if strings.HasPrefix(msg, "Stopped accept routine") {
		return true
	}
	for _, v := range kv {
		if err, ok := v.(error); ok && strings.Contains(err.Error(), "use of closed network connection") {
			return true
		}
	}
	return false
}
func (a slogAdapter) With(kv ...any) cmtlog.Logger {
	return slogAdapter{l: a.l.With(kv...), level: a.level, min: a.min}
}
