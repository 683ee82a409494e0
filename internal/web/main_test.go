package web_test

import (
	"errors"
	"os"
	"testing"
)

// cleanups stop what the package's tests shared (the devnet) once they
// all ran.
var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "aitbc-web-test-") }

func osRemoveAll(p string) { _ = os.RemoveAll(p) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
