//go:build !linux

package swarm

import (
	"context"
	"errors"
	"net"
	"time"
)

// NetemLab needs Linux network namespaces.
type NetemLab struct{}

// NewNetemLab fails off Linux.
func NewNetemLab(context.Context, int, time.Duration) (*NetemLab, error) {
	return nil, errors.New("swarm: injected round trips need Linux network namespaces")
}

// IP is never reached.
func (*NetemLab) IP(int) string { return "" }

// Listen is never reached.
func (*NetemLab) Listen(int) (net.Listener, error) { return nil, errors.New("swarm: no netem lab") }

// Close does nothing.
func (*NetemLab) Close() error { return nil }
