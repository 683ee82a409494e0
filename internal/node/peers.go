package node

import (
	"sort"

	cs "github.com/cometbft/cometbft/consensus"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/types"

	"github.com/aitbc/aitbc/internal/rpc"
)

// highestPeer returns the highest height any of peers has committed, as
// announced in its consensus state (0 with no peers). A node whose own
// height is well below it is behind, whatever mode it is in: block sync
// hands over to consensus once it reaches the peers' heights as last polled
// (every 10 s), and consensus then catches up the rest by gossip.
func highestPeer(peers []rpc.PeerInfo) int64 {
	var top int64
	for _, p := range peers {
		top = max(top, p.Height)
	}
	return top
}

// peers lists the connected peers with the height each last announced.
func (n *Node) peers() []rpc.PeerInfo {
	list := n.comet.Switch().Peers().List()
	out := make([]rpc.PeerInfo, 0, len(list))
	for _, p := range list {
		pi := rpc.PeerInfo{NodeID: string(p.ID()), Outbound: p.IsOutbound()}
		if ni, ok := p.NodeInfo().(p2p.DefaultNodeInfo); ok {
			pi.Moniker = ni.Moniker
		}
		if a := p.SocketAddr(); a != nil {
			pi.Address = a.DialString()
		}
		// A peer's consensus height is the one it is deciding: it has
		// committed the one before.
		if ps, ok := p.Get(types.PeerStateKey).(*cs.PeerState); ok {
			pi.Height = max(ps.GetHeight()-1, 0)
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Moniker < out[j].Moniker })
	return out
}

// catchingUp reports whether the node is still syncing (block sync) or
// more than one block behind its highest peer.
func (n *Node) catchingUp(height, peerHeight int64) bool {
	return n.comet.ConsensusReactor().WaitSync() || peerHeight > height+1
}
