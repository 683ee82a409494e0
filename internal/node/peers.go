package node

import (
	cs "github.com/cometbft/cometbft/consensus"
	"github.com/cometbft/cometbft/types"
)

// PeerHeight returns the highest height any connected peer has committed,
// from the consensus state each peer announces (0 with no peers). A node
// whose own height is well below it is behind, whatever mode it is in:
// block sync hands over to consensus once it reaches the peers' heights as
// last polled (every 10 s), and consensus then catches up the rest by
// gossip.
func (n *Node) PeerHeight() int64 {
	var top int64
	for _, p := range n.comet.Switch().Peers().List() {
		ps, ok := p.Get(types.PeerStateKey).(*cs.PeerState)
		if !ok {
			continue
		}
		// A peer's consensus height is the one it is deciding: it has
		// committed the one before.
		if h := ps.GetHeight() - 1; h > top {
			top = h
		}
	}
	return top
}

// catchingUp reports whether the node is still syncing (block sync) or
// more than one block behind its highest peer.
func (n *Node) catchingUp(height int64) bool {
	return n.comet.ConsensusReactor().WaitSync() || n.PeerHeight() > height+1
}
