//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package system

// openFileLimit is unknown here: the listeners keep their default caps.
func openFileLimit() int { return 0 }
