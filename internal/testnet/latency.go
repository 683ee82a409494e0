package testnet

import (
	"errors"
	"fmt"
	"time"

	"github.com/aitbc/aitbc/internal/netsim"
)

// relayLinks puts a round trip of rtt on every link between m's nodes
// without netem: for each ordered pair (i, j) a netsim relay on loopback
// forwards to j's p2p port, and node i's persistent peer j is rewritten
// to dial the relay (same node id: the p2p handshake still authenticates
// j). Whichever of the two connections of a pair survives CometBFT's
// de-duplication crosses exactly one relay, so every link costs one RTT.
// Peer exchange is turned off, or the nodes would learn the direct
// addresses and bypass the relays. The returned function closes the
// relays; call it after the nodes have stopped.
func relayLinks(m *Manifest, rtt time.Duration) (func() error, error) {
	var relays []*netsim.Relay
	closeAll := func() error {
		var errs []error
		for _, r := range relays {
			errs = append(errs, r.Close())
		}
		return errors.Join(errs...)
	}
	for i := range m.Nodes {
		nc, err := LoadNodeConfig(m.HomeOf(i))
		if err != nil {
			_ = closeAll()
			return nil, err
		}
		nc.PersistentPeers = []string{}
		for j, other := range m.Nodes {
			if j == i {
				continue
			}
			r, err := netsim.Listen(other.P2P, netsim.Config{RTT: rtt})
			if err != nil {
				_ = closeAll()
				return nil, fmt.Errorf("testnet: relay to %s: %w", other.Name, err)
			}
			relays = append(relays, r)
			nc.PersistentPeers = append(nc.PersistentPeers, other.NodeID+"@"+r.Addr().String())
		}
		nc.PEX = false
		if err := nc.Save(m.HomeOf(i)); err != nil {
			_ = closeAll()
			return nil, err
		}
	}
	return closeAll, nil
}
