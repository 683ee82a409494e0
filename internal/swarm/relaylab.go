package swarm

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aitbc/aitbc/internal/netsim"
)

// RelayLab is NetemLab's substitute where the kernel has no netem qdisc
// (or the caller no root): each span server listens on loopback behind a
// netsim relay that delays each direction by half the round trip, and
// advertises the relay's address, so every request the driver sends a
// server, and its answer, costs one RTT. Unlike netem it delays chunks
// of a TCP stream, not packets: no loss, no effect on the kernel's
// congestion window — for one request at a time, as a route does, the
// two agree.
type RelayLab struct {
	rtt time.Duration
}

// NewRelayLab makes a lab adding rtt to every hop.
func NewRelayLab(rtt time.Duration) (*RelayLab, error) {
	if rtt < 0 || rtt > netsim.MaxDelay {
		return nil, fmt.Errorf("swarm: a round trip of %s (0 to %s)", rtt, netsim.MaxDelay)
	}
	return &RelayLab{rtt: rtt}, nil
}

// Listen opens a loopback listener for span server i behind a relay of
// the lab's round trip; the listener's Addr is the relay's, and closing
// it closes the relay.
func (l *RelayLab) Listen(int) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r, err := netsim.Listen(ln.Addr().String(), netsim.Config{RTT: l.rtt})
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return &relayedListener{Listener: ln, relay: r}, nil
}

// relayedListener is a server's listener that clients reach through a
// relay.
type relayedListener struct {
	net.Listener
	relay *netsim.Relay
}

func (r *relayedListener) Addr() net.Addr { return r.relay.Addr() }

func (r *relayedListener) Close() error {
	return errors.Join(r.Listener.Close(), r.relay.Close())
}
