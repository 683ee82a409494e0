package cli

import (
	"context"
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// readSecret reads one line from the terminal f with echo turned off
// (golang.org/x/term, on every system it supports), and restores the
// terminal afterwards, also when ctx ends first (Ctrl-C): ReadPassword
// would only restore it once a line came.
func readSecret(ctx context.Context, f *os.File) (string, error) {
	fd := int(f.Fd())
	old, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		return string(r.b), r.err
	case <-ctx.Done():
		_ = term.Restore(fd, old)
		return "", ctx.Err()
	}
}
