package cli

import (
	"log/slog"
)

// Log formats of --log-format (AITBC_LOG_FORMAT).
const (
	LogFormatText = "text" // key=value lines, for people
	LogFormatJSON = "json" // one JSON object per line, for log shippers
)

// checkLogFormat validates --log-format.
func checkLogFormat(f string) error {
	if f != LogFormatText && f != LogFormatJSON {
		return usagef("--log-format must be text or json, not %q", f)
	}
	return nil
}

// logger is the one place a long-running command makes its logger: it
// writes to the command's stderr at level, in the --log-format the user
// chose.
func (g *Globals) logger(level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if g.LogFormat == LogFormatJSON {
		return slog.New(slog.NewJSONHandler(g.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

// newLogger is logger with the level given by name ("debug", "info",
// "warn", "error"), as the --log-level flags take it.
func (g *Globals) newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level must be debug, info, warn or error, not %q", level)
	}
	return g.logger(l), nil
}
