package system

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrInUse is returned when a home or store that one process must own is
// held by another (or by another service of this process).
var ErrInUse = errors.New("in use by another process")

// LockFile is the name of the lock a running devnet or node holds in its
// home (and a coordinator beside its store).
const LockFile = "aitbc.lock"

// lockPath takes an exclusive lock on path, creating the file, and
// returns its release. hint says what probably holds it.
func lockPath(path, what, hint string) (func() error, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%s %w (%s)", what, ErrInUse, hint)
		}
		return nil, fmt.Errorf("%s: lock %s: %w", what, path, err)
	}
	return func() error {
		_ = unlockFile(f)
		return f.Close()
	}, nil
}

// LockHome takes dir (a devnet's home) for this system until it closes:
// a second devnet or node on the same home fails at once with ErrInUse,
// before it opens anything there.
func (s *System) LockHome(dir string) error {
	sv, err := s.begin("home lock")
	if err != nil {
		return err
	}
	release, err := lockPath(filepath.Join(dir, LockFile), "home "+dir, "is a devnet or node already running on it?")
	if err != nil {
		return s.abort(sv, err)
	}
	sv.onClose(release)
	return nil
}
