package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
)

// Timing of the test networks: short blocks, and a short wait for a dead
// proposer, so that faults resolve quickly. Deadlines for progress are
// generous: the machine is small and shared.
const (
	blockTime      = 400 * time.Millisecond
	proposeTimeout = time.Second
	progressWait   = 45 * time.Second // a height must advance within this
	catchUpWait    = 90 * time.Second // a restarted node must catch up within this
)

// network is a running testnet of node processes owned by one test.
type network struct {
	t  *testing.T
	cl *testnet.Cluster
	m  *testnet.Manifest
}

type netOptions struct {
	validators int
	accounts   int  // funded load-generator accounts (testnet.BenchKey(0..n-1))
	noPEX      bool // nodes dial only their persistent peers
	// peers, when set, rewrites node i's persistent peers before start
	// (partition tests route them through proxies).
	peers func(m *testnet.Manifest, i int) []string
}

// startNetwork creates a testnet in a temporary directory and starts
// every node; every process is stopped when the test ends, pass or fail,
// and on failure the tail of every node's log is printed.
func startNetwork(t *testing.T, o netOptions) *network {
	t.Helper()
	if aitbcBin == "" {
		t.Skip("no aitbc binary (run without -short)")
	}
	if o.validators == 0 {
		o.validators = 4
	}
	dir := t.TempDir() // removed after the cleanup below has stopped the nodes
	m, err := testnet.Init(testnet.Options{
		Dir: dir, ChainID: "aitbc-fault", Validators: o.validators, FreePorts: true, NoCometRPC: true,
		BlockTime: blockTime, ProposeTimeout: proposeTimeout, DisablePEX: o.noPEX,
		CheckInvariants: true, // every node audits every block: a leak halts the test's chain
		Accounts:        testnet.BenchAccounts(o.accounts, 1_000_000*coin.Unit),
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.peers != nil {
		for i := range m.Nodes {
			c, err := testnet.LoadNodeConfig(m.HomeOf(i))
			if err != nil {
				t.Fatal(err)
			}
			c.PersistentPeers = o.peers(m, i)
			if err := c.Save(m.HomeOf(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := &network{t: t, cl: testnet.NewCluster(m, aitbcBin), m: m}
	t.Cleanup(func() {
		if t.Failed() {
			n.dumpLogs()
		}
		n.cl.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.cl.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	n.waitAll(n.all(), 2, progressWait)
	t.Logf("started %d nodes as processes (block time %s, propose timeout %s) in %s", len(m.Nodes), blockTime, proposeTimeout, dir)
	return n
}

func (n *network) dumpLogs() {
	for i, p := range n.cl.Procs {
		if p == nil {
			continue
		}
		n.t.Logf("---- %s log tail (%s) ----\n%s", n.m.Nodes[i].Name, p.LogPath, p.LogTail(3000))
	}
}

func (n *network) all() []int {
	out := make([]int, len(n.m.Nodes))
	for i := range out {
		out[i] = i
	}
	return out
}

func (n *network) except(skip ...int) []int {
	var out []int
	for _, i := range n.all() {
		keep := true
		for _, s := range skip {
			keep = keep && s != i
		}
		if keep {
			out = append(out, i)
		}
	}
	return out
}

func (n *network) client(i int) *rpc.Client { return n.cl.Client(i) }

// height is node i's committed height, or -1 when it does not answer.
func (n *network) height(i int) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := n.client(i).Health(ctx)
	if err != nil {
		return -1
	}
	return h.Height
}

func (n *network) maxHeight(nodes []int) int64 {
	var top int64 = -1
	for _, i := range nodes {
		top = max(top, n.height(i))
	}
	return top
}

// waitAll waits until every node in nodes has committed height h.
func (n *network) waitAll(nodes []int, h int64, within time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for _, i := range nodes {
		for n.height(i) < h {
			if time.Now().After(deadline) {
				n.t.Fatalf("%s did not reach height %d within %s (at %d)", n.m.Nodes[i].Name, h, within, n.height(i))
			}
			if !n.cl.Running(i) {
				n.t.Fatalf("%s exited while waiting for height %d: %v", n.m.Nodes[i].Name, h, n.cl.Procs[i].Err())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// advances waits for the chain, as seen by nodes, to commit `blocks` more
// blocks, and returns the new height.
func (n *network) advances(nodes []int, blocks int64, what string) int64 {
	n.t.Helper()
	from := n.maxHeight(nodes)
	n.waitAll(nodes, from+blocks, progressWait)
	to := n.maxHeight(nodes)
	n.t.Logf("%s: height advanced %d -> %d on %s", what, from, to, n.names(nodes))
	return to
}

func (n *network) names(nodes []int) string {
	var s []string
	for _, i := range nodes {
		s = append(s, n.m.Nodes[i].Name)
	}
	return strings.Join(s, ",")
}

func (n *network) kill(i int) {
	n.cl.Kill(i)
	n.t.Logf("SIGKILLed %s", n.m.Nodes[i].Name)
}

func (n *network) restart(i int) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.cl.Start(ctx, i); err != nil {
		n.t.Fatal(err)
	}
	n.t.Logf("restarted %s (pid %d)", n.m.Nodes[i].Name, n.cl.Procs[i].Pid())
}

// catchUp waits until node i has reached the height the others had when
// it was asked, and is no longer catching up.
func (n *network) catchUp(i int, others []int) {
	n.t.Helper()
	target := n.maxHeight(others)
	start := time.Now()
	n.waitAll([]int{i}, target, catchUpWait)
	ctx, cancel := context.WithTimeout(context.Background(), catchUpWait)
	defer cancel()
	for {
		s, err := n.client(i).Sync(ctx)
		if err == nil && !s.CatchingUp {
			break
		}
		select {
		case <-ctx.Done():
			n.t.Fatalf("%s still catching up after %s", n.m.Nodes[i].Name, catchUpWait)
		case <-time.After(100 * time.Millisecond):
		}
	}
	n.t.Logf("%s caught up to height %d in %s", n.m.Nodes[i].Name, target, time.Since(start).Round(time.Millisecond))
}

// checkAgreement compares, for every height from 1 to the lowest height
// of nodes, the block hash and app hash that every node serves. It
// returns the number of heights checked.
func (n *network) checkAgreement(nodes []int) int64 {
	n.t.Helper()
	top := n.maxHeight(nodes)
	n.waitAll(nodes, top, catchUpWait)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type pair struct{ hash, app string }
	got := make([][]pair, len(nodes))
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for k, i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[k] = make([]pair, top+1)
			for h := int64(1); h <= top; h++ {
				b, err := n.client(i).Block(ctx, h)
				if err != nil {
					errs[k] = fmt.Errorf("%s block %d: %w", n.m.Nodes[i].Name, h, err)
					return
				}
				got[k][h] = pair{b.Hash, b.AppHash}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			n.t.Fatal(err)
		}
	}
	for h := int64(1); h <= top; h++ {
		for k := 1; k < len(nodes); k++ {
			if got[k][h] != got[0][h] {
				n.t.Fatalf("FORK at height %d: %s has block %s app %s, %s has block %s app %s", h,
					n.m.Nodes[nodes[0]].Name, got[0][h].hash, got[0][h].app, n.m.Nodes[nodes[k]].Name, got[k][h].hash, got[k][h].app)
			}
		}
	}
	n.t.Logf("agreement: %s serve identical block hashes and app hashes at all %d heights", n.names(nodes), top)
	return top
}

// checkAcked checks that every transfer the load generator saw committed
// is committed on every node in nodes, at the height it was seen at: each
// is looked up in the block of that height as every node serves it (their
// block hashes agree, checked by checkAgreement, and a block hash commits
// to the block's transactions); and each node's own transaction index is
// asked about a sample of them (all of them in the long set).
func (n *network) checkAcked(lg *loadGen, nodes []int) {
	n.t.Helper()
	acked := lg.ackedTxs()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var problems []string
	problem := func(format string, a ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, a...))
		mu.Unlock()
	}

	// 1. Every acknowledged transfer is in the block of its height, on
	// every node.
	byHeight := map[int64][]string{}
	for _, a := range acked {
		byHeight[a.height] = append(byHeight[a.height], a.hash)
	}
	var wg sync.WaitGroup
	for _, i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h, hashes := range byHeight {
				b, err := n.client(i).Block(ctx, h)
				if err != nil {
					problem("%s block %d: %v", n.m.Nodes[i].Name, h, err)
					continue
				}
				in := map[string]bool{}
				for _, th := range b.Txs {
					in[th] = true
				}
				for _, th := range hashes {
					if !in[th] {
						problem("%s: block %d lacks %s, acknowledged as committed there", n.m.Nodes[i].Name, h, th)
					}
				}
			}
		}()
	}
	wg.Wait()

	// 2. Each node's index says committed, at that height.
	sample := acked
	if !long() && len(sample) > 300 {
		sample = nil
		for k := 0; k < 300; k++ {
			sample = append(sample, acked[rand.IntN(len(acked))])
		}
	}
	work := make(chan ackedTx)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				for _, i := range nodes {
					t, err := n.client(i).Tx(ctx, a.hash)
					if err != nil || t.Status != "committed" || t.Height != a.height {
						problem("%s on %s: status %q height %d (acknowledged at %d) err %v", a.hash, n.m.Nodes[i].Name, t.Status, t.Height, a.height, err)
					}
				}
			}
		}()
	}
	for _, a := range sample {
		work <- a
	}
	close(work)
	wg.Wait()
	if len(problems) > 0 {
		n.t.Fatalf("%d problems with acknowledged transfers, e.g.:\n%s", len(problems), strings.Join(problems[:min(10, len(problems))], "\n"))
	}
	n.t.Logf("acknowledged: all %d transfers the load generator saw committed are in their blocks on %s; each node's index agrees for %d of them",
		len(acked), n.names(nodes), len(sample))
}
