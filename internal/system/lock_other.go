//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package system

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lockFile does nothing here: the chain's own stores (Pebble, goleveldb)
// still refuse a second opener, with a less helpful message.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }
