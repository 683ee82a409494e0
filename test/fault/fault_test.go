package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/testnet"
)

// TestKilledValidatorCatchesUpAndNothingCommittedIsLost kills one of four
// validators with SIGKILL under load: the other three keep committing;
// restarted, it catches up; every transfer acknowledged as committed is on
// every node, and all nodes agree on every block and app hash.
func TestKilledValidatorCatchesUpAndNothingCommittedIsLost(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, netOptions{accounts: 16})
	lg := startLoad(n, 16, 4)
	n.advances(n.all(), 5, "under load")

	victims := []int{3}
	if long() {
		victims = []int{3, 0, 1, 2}
	}
	for _, v := range victims {
		before := lg.ackedCount()
		n.kill(v)
		n.advances(n.except(v), 10, fmt.Sprintf("%s down", n.m.Nodes[v].Name))
		if lg.ackedCount() <= before {
			t.Fatalf("no transfer committed while %s was down", n.m.Nodes[v].Name)
		}
		t.Logf("%d transfers acknowledged as committed while %s was down", lg.ackedCount()-before, n.m.Nodes[v].Name)
		n.restart(v)
		n.catchUp(v, n.except(v))
		n.advances(n.all(), 3, "all four back")
	}
	lg.finish()
	n.checkAgreement(n.all())
	n.checkAcked(lg, n.all())
	n.checkCLI(lg)
}

// TestTwoOfFourKilledHaltsAndResumes kills two of four validators: without
// two thirds of the voting power the chain halts (no block is committed,
// nothing forks, nothing committed is lost); restarted, it resumes.
func TestTwoOfFourKilledHaltsAndResumes(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, netOptions{accounts: 16})
	lg := startLoad(n, 16, 4)
	n.advances(n.all(), 5, "under load")

	n.kill(2)
	n.kill(3)
	// A block whose precommits were already gathered may still land.
	time.Sleep(3 * time.Second)
	live := []int{0, 1}
	halted := n.maxHeight(live)
	ackedAtHalt := lg.ackedCount()
	time.Sleep(8 * time.Second)
	if h := n.maxHeight(live); h != halted {
		t.Fatalf("with two of four validators down the chain moved from %d to %d", halted, h)
	}
	t.Logf("halted: node0,node1 stayed at height %d for 8s with node2,node3 down (%d acknowledged transfers so far)", halted, ackedAtHalt)
	n.checkAgreement(live)

	n.restart(2)
	n.restart(3)
	resumeStart := time.Now()
	n.waitAll(n.all(), halted+1, progressWait)
	t.Logf("resumed: height %d committed %s after the restarts", halted+1, time.Since(resumeStart).Round(time.Millisecond))
	n.advances(n.all(), 5, "all four back")
	if lg.ackedCount() <= ackedAtHalt {
		t.Fatalf("no transfer committed after the chain resumed")
	}
	lg.finish()
	n.checkAgreement(n.all())
	n.checkAcked(lg, n.all())
}

// TestKillNineUnderLoadManyTimes SIGKILLs a validator at a random moment
// while blocks full of transfers are being committed, again and again
// (3 times; 20 in the long set): each time it restarts cleanly (the ABCI
// handshake replays what its app had not committed) and catches up.
func TestKillNineUnderLoadManyTimes(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, netOptions{accounts: 24})
	lg := startLoad(n, 24, 8)
	n.advances(n.all(), 3, "under load")

	rounds := 3
	if long() {
		rounds = 20
	}
	for r := 0; r < rounds; r++ {
		v := r % 4
		// Somewhere inside a block interval, under load.
		time.Sleep(time.Duration(300+rand.IntN(1700)) * time.Millisecond)
		t.Logf("round %d/%d: killing %s at height %d", r+1, rounds, n.m.Nodes[v].Name, n.height(v))
		n.kill(v)
		n.advances(n.except(v), 3, fmt.Sprintf("round %d, %s down", r+1, n.m.Nodes[v].Name))
		n.restart(v)
		n.catchUp(v, n.except(v))
	}
	n.advances(n.all(), 3, "all four back")
	lg.finish()
	n.checkAgreement(n.all())
	n.checkAcked(lg, n.all())
}

// TestPartitionMinorityStopsMajorityContinuesThenHeals routes every link
// between nodes through a TCP proxy (peer exchange off, so nodes cannot
// go around it) and cuts node3 off from the rest: node3 stops, the three
// others go on; healed, node3 catches up and all agree. The long set also
// splits the network 2|2: both halves halt, and resume when healed.
func TestPartitionMinorityStopsMajorityContinuesThenHeals(t *testing.T) {
	t.Parallel()
	var links [][]*proxy // links[i][j]: node i dials node j through it
	n := startNetwork(t, netOptions{accounts: 16, noPEX: true, peers: func(m *testnet.Manifest, i int) []string {
		if links == nil {
			links = make([][]*proxy, len(m.Nodes))
			for a := range m.Nodes {
				links[a] = make([]*proxy, len(m.Nodes))
				for b := range m.Nodes {
					if a != b {
						links[a][b] = newProxy(t, m.Nodes[b].P2P)
					}
				}
			}
		}
		var peers []string
		for j := range m.Nodes {
			if j != i {
				peers = append(peers, m.Nodes[j].NodeID+"@"+links[i][j].addr())
			}
		}
		return peers
	}})
	partition := func(sides ...[]int) {
		side := map[int]int{}
		for s, nodes := range sides {
			for _, i := range nodes {
				side[i] = s
			}
		}
		for a := range links {
			for b, p := range links[a] {
				if p != nil {
					p.setCut(side[a] != side[b])
				}
			}
		}
	}
	lg := startLoad(n, 16, 4)
	n.advances(n.all(), 5, "under load, fully connected")

	majority, minority := []int{0, 1, 2}, []int{3}
	partition(majority, minority)
	t.Logf("partitioned: %s | %s", n.names(majority), n.names(minority))
	time.Sleep(2 * time.Second)
	stuck := n.height(3)
	n.advances(majority, 10, "majority side")
	if h := n.height(3); h != stuck {
		t.Fatalf("node3, cut off alone, moved from height %d to %d", stuck, h)
	}
	t.Logf("minority side: node3 stayed at height %d", stuck)
	partition(n.all())
	t.Log("healed")
	n.catchUp(3, majority)
	n.advances(n.all(), 3, "healed")

	if long() {
		a, b := []int{0, 1}, []int{2, 3}
		partition(a, b)
		t.Logf("partitioned: %s | %s", n.names(a), n.names(b))
		time.Sleep(3 * time.Second)
		halted := n.maxHeight(n.all())
		time.Sleep(8 * time.Second)
		if h := n.maxHeight(n.all()); h != halted {
			t.Fatalf("split 2|2, the chain moved from %d to %d", halted, h)
		}
		t.Logf("split 2|2: no side committed for 8s (height %d)", halted)
		partition(n.all())
		t.Log("healed")
		n.advances(n.all(), 5, "healed 2|2")
	}
	lg.finish()
	n.checkAgreement(n.all())
	n.checkAcked(lg, n.all())
}

// TestNewFullNodeJoinsAndCatchesUpFromGenesis adds a non-validator to a
// running network (testnet add-node): it block-syncs from genesis, its
// /api/v1/sync/status says catching_up while it is behind and not once
// it is far behind, and it ends with the same blocks as the validators.
func TestNewFullNodeJoinsAndCatchesUpFromGenesis(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, netOptions{accounts: 16})
	lg := startLoad(n, 16, 4)
	n.waitAll(n.all(), 30, 2*progressWait)

	i, err := testnet.AddNode(n.m, testnet.AddNodeOptions{FreePorts: true, NoCometRPC: true})
	if err != nil {
		t.Fatal(err)
	}
	n.restart(i)
	ctx, cancel := context.WithTimeout(context.Background(), catchUpWait)
	defer cancel()
	var samples, catchingBehind, reportedBehind int
	for {
		network := n.height(0)
		s, err := n.client(i).Sync(ctx)
		if err != nil {
			t.Fatalf("%s sync status: %v", n.m.Nodes[i].Name, err)
		}
		samples++
		if s.Validator {
			t.Fatalf("%s says it is a validator", n.m.Nodes[i].Name)
		}
		if s.CatchingUp && s.LatestBlockHeight < network {
			catchingBehind++
		}
		// The network height it reports comes from its peers' announcements:
		// it can lag theirs (read after it), never run ahead.
		if top := n.maxHeight(n.except(i)); s.NetworkHeight > top || s.NetworkHeight < s.LatestBlockHeight || s.BlocksBehind != s.NetworkHeight-s.LatestBlockHeight {
			t.Fatalf("%s sync status: height %d, network %d, behind %d (validators at %d)", n.m.Nodes[i].Name, s.LatestBlockHeight, s.NetworkHeight, s.BlocksBehind, top)
		}
		if s.BlocksBehind > 3 {
			reportedBehind++
		}
		if !s.CatchingUp && s.LatestBlockHeight < network-3 {
			t.Fatalf("%s says it is not catching up at height %d while the network is at %d", n.m.Nodes[i].Name, s.LatestBlockHeight, network)
		}
		if !s.CatchingUp && s.LatestBlockHeight >= network-1 {
			t.Logf("%s caught up: height %d (network %d), %d peers; %d of %d status samples said catching_up while behind",
				n.m.Nodes[i].Name, s.LatestBlockHeight, network, s.Peers, catchingBehind, samples)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not catch up within %s (at %d, network %d)", n.m.Nodes[i].Name, catchUpWait, s.LatestBlockHeight, network)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if catchingBehind == 0 {
		t.Fatalf("%s never reported catching_up while behind", n.m.Nodes[i].Name)
	}
	if reportedBehind == 0 {
		t.Fatalf("%s never reported more than 3 blocks behind while it synced", n.m.Nodes[i].Name)
	}
	s, err := n.client(i).Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range s.PeerList {
		names = append(names, p.Moniker)
		if p.NodeID == "" || p.Address == "" || p.Height < s.LatestBlockHeight-3 {
			t.Fatalf("%s peer list entry %+v", n.m.Nodes[i].Name, p)
		}
	}
	if len(s.PeerList) != s.Peers || s.Peers == 0 {
		t.Fatalf("%s: %d peers, peer list %v", n.m.Nodes[i].Name, s.Peers, names)
	}
	t.Logf("%s: %d of %d samples reported more than 3 blocks behind; peers now %v", n.m.Nodes[i].Name, reportedBehind, samples, names)
	n.advances(n.all(), 3, "with the new node")
	lg.finish()
	n.checkAgreement(n.all())
	n.checkAcked(lg, n.all())
}
