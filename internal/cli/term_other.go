//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package cli

import (
	"context"
	"errors"
	"os"
)

// isTerminal is false where this build cannot turn terminal echo off:
// passwords must then come from --password or AITBC_PASSWORD.
func isTerminal(*os.File) bool { return false }

func readSecret(context.Context, *os.File) (string, error) {
	return "", errors.New("reading a password from the terminal is not supported on this system")
}
