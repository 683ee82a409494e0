package fault

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
)

// loadGen sends transfers from several funded accounts for as long as it
// runs, to whichever node answers, and records which transfers it saw
// committed (by polling a node, not from the submission's answer, which
// only means "in the mempool").
//
// Each account sends a window of consecutive nonces to one node, waits
// for all of them to be committed, then sends the next window. When the
// node stops answering, or the window is not committed in time (the node
// died, is partitioned or the chain halted), it resubmits the same signed
// bytes, in order, to the next node: the same bytes are the same
// transaction, so nothing is paid twice.
type loadGen struct {
	n       *network
	chainID string
	fee     coin.Amount
	keys    []ed25519.PrivateKey
	window  int
	wait    time.Duration // how long a window may take to commit before resubmitting
	clients []*rpc.Client // the nodes when the load started
	names   []string

	mu       sync.Mutex
	acked    []ackedTx
	failedTx ackedTx
	gapSeen  map[string]bool

	submitted, resubmits, failed, nonceGaps atomic.Int64
	firstFail, firstGap                     atomic.Value

	cancel context.CancelFunc
	done   sync.WaitGroup
}

type ackedTx struct {
	hash   string
	height int64
}

type signedTx struct {
	raw  []byte
	hash string
}

// startLoad starts the load generator over the first accounts funded
// accounts of the network, each with window transfers in flight.
func startLoad(n *network, accounts, window int) *loadGen {
	n.t.Helper()
	lg := &loadGen{n: n, chainID: n.m.ChainID, fee: app.DefaultParams().MinFee, window: window, wait: 8 * time.Second}
	for i := 0; i < accounts; i++ {
		lg.keys = append(lg.keys, testnet.BenchKey(i))
	}
	for i, nd := range n.m.Nodes {
		lg.clients = append(lg.clients, n.client(i))
		lg.names = append(lg.names, nd.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lg.cancel = cancel
	for a := range lg.keys {
		lg.done.Add(1)
		go func() {
			defer lg.done.Done()
			lg.account(ctx, a)
		}()
	}
	n.t.Cleanup(lg.stop)
	n.t.Logf("load: %d accounts sending transfers, %d in flight each, to all nodes", accounts, window)
	return lg
}

// stop ends the load and waits for the senders. Safe to call twice.
func (lg *loadGen) stop() {
	lg.cancel()
	lg.done.Wait()
}

// finish stops the load and logs what it did; it fails the test if the
// chain ever answered a transfer with failure.
func (lg *loadGen) finish() {
	lg.n.t.Helper()
	lg.stop()
	lg.n.t.Logf("load: %d submissions (%d resubmissions after a node died, stalled or was cut off), %d transfers acknowledged as committed",
		lg.submitted.Load(), lg.resubmits.Load(), len(lg.ackedTxs()))
	if g := lg.nonceGaps.Load(); g > 0 {
		lg.n.t.Logf("load: KNOWN CHAIN ISSUE: %d times a transfer failed in a block with nonce_gap although sent in nonce order "+
			"(mempool insertion order races with CheckTx; see tolerateNonceGapInBlock); the load generator waits for it to be included again. First: %v", g, lg.firstGap.Load())
	}
	if f := lg.failed.Load(); f > 0 {
		lg.explainFailure()
		lg.n.t.Fatalf("load: %d transfers failed in a block, first: %v", f, lg.firstFail.Load())
	}
}

func (lg *loadGen) ackedTxs() []ackedTx {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	return append([]ackedTx(nil), lg.acked...)
}

// ackedCount is the number of transfers acknowledged so far.
func (lg *loadGen) ackedCount() int {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	return len(lg.acked)
}

func (lg *loadGen) sign(a int, nonce uint64) signedTx {
	key := lg.keys[a]
	to := address.FromPubKey(lg.keys[(a+1)%len(lg.keys)].Public().(ed25519.PublicKey))
	t := &tx.Tx{ChainID: lg.chainID, Nonce: nonce, Fee: lg.fee, Msg: bank.NewSendMsg(to, coin.Unit/100)}
	t.Sign(key)
	raw, err := t.Encode()
	if err != nil {
		panic(fmt.Sprintf("load: encode: %v", err)) // cannot happen for a well-formed transfer
	}
	return signedTx{raw: raw, hash: tx.HashString(tx.Hash(raw))}
}

func (lg *loadGen) account(ctx context.Context, a int) {
	nodes := len(lg.clients)
	node := a % nodes
	var nonce uint64
	for ctx.Err() == nil {
		pending := make([]signedTx, lg.window)
		for k := range pending {
			pending[k] = lg.sign(a, nonce+uint64(k))
		}
		for first := true; len(pending) > 0 && ctx.Err() == nil; first = false {
			if !first {
				lg.resubmits.Add(1)
				node = (node + 1) % nodes
			}
			if !lg.submit(ctx, node, pending) {
				continue
			}
			pending = lg.awaitCommits(ctx, node, pending)
		}
		nonce += uint64(lg.window)
	}
}

// submit sends the window in order to node; false when the node is not
// usable now (down, or behind and refusing the nonces).
func (lg *loadGen) submit(ctx context.Context, node int, txs []signedTx) bool {
	c := lg.clients[node]
	for _, s := range txs {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.Submit(sctx, s.raw)
		cancel()
		lg.submitted.Add(1)
		switch {
		case err == nil, httpx.IsCode(err, "tx_already_known"):
		case httpx.IsCode(err, "invalid_nonce"):
			// Already committed (only this loop signs for the account):
			// awaitCommits finds it.
		default:
			if ctx.Err() == nil && !isDown(err) && !httpx.IsCode(err, "nonce_gap") && !httpx.IsCode(err, "mempool_full") {
				lg.fail(fmt.Errorf("submit %s to %s: %w", s.hash, lg.names[node], err))
			}
			sleepCtx(ctx, 200*time.Millisecond)
			return false
		}
	}
	return true
}

// awaitCommits polls node until the window's transfers are committed, in
// nonce order, or lg.wait passes; it returns those still not seen.
func (lg *loadGen) awaitCommits(ctx context.Context, node int, pending []signedTx) []signedTx {
	c := lg.clients[node]
	deadline := time.Now().Add(lg.wait)
	for len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		sleepCtx(ctx, 150*time.Millisecond)
		for len(pending) > 0 {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			t, err := c.Tx(qctx, pending[0].hash)
			cancel()
			if err != nil {
				if isDown(err) {
					return pending
				}
				break // not found or pending: not yet
			}
			if t.Status == "failed" {
				lg.failedInBlock(t)
				break // not committed; it may be included again later
			}
			if t.Status != "committed" {
				break
			}
			lg.mu.Lock()
			lg.acked = append(lg.acked, ackedTx{hash: pending[0].hash, height: t.Height})
			lg.mu.Unlock()
			pending = pending[1:]
		}
	}
	return pending
}

// tolerateNonceGapInBlock: the node's mempool can hold one sender's
// transfers out of nonce order (CometBFT's CListMempool runs the app's
// CheckTx under the ABCI client's lock but inserts the transaction into
// its list after releasing it, so two CheckTx calls from different peers
// or the REST API can be inserted in the opposite order), and the app
// proposes the mempool's order as it is. Then a transfer fails in a block
// with nonce_gap although it was signed and sent in order, and is included
// again later. The app now orders each sender's transactions by nonce in
// PrepareProposal (internal/chain/app/proposal.go), so such a failure fails
// the test again; set this to true only to diagnose a regression.
const tolerateNonceGapInBlock = false

// failedInBlock records a transfer the chain answered with failure.
func (lg *loadGen) failedInBlock(t rpc.Transaction) {
	err := fmt.Errorf("transfer %s (nonce %d) failed at height %d: %s", t.Hash, t.Nonce, t.Height, t.Error)
	if tolerateNonceGapInBlock && errs.Lookup(t.Codespace, t.Code) == tx.ErrNonceGap {
		lg.mu.Lock()
		defer lg.mu.Unlock()
		if lg.gapSeen == nil {
			lg.gapSeen = map[string]bool{}
		}
		if !lg.gapSeen[t.Hash] {
			lg.gapSeen[t.Hash] = true
			if lg.nonceGaps.Add(1) == 1 {
				lg.firstGap.Store(err.Error())
			}
		}
		return
	}
	lg.failTx(t.Hash, err)
}

func (lg *loadGen) failTx(hash string, err error) {
	lg.mu.Lock()
	if lg.failedTx.hash == "" {
		lg.failedTx.hash = hash
	}
	lg.mu.Unlock()
	lg.fail(err)
}

func (lg *loadGen) fail(err error) {
	lg.failed.Add(1)
	lg.firstFail.CompareAndSwap(nil, err.Error())
}

// isDown reports an error of a node that does not answer at all.
func isDown(err error) bool {
	var api *httpx.APIError
	return err != nil && !errors.As(err, &api)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// explainFailure logs, for the first failed transfer, the blocks around
// it with every transfer of the same sender: which nonces went where.
func (lg *loadGen) explainFailure() {
	lg.mu.Lock()
	ft := lg.failedTx
	lg.mu.Unlock()
	if ft.hash == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := lg.clients[1]
	t, err := c.Tx(ctx, ft.hash)
	if err != nil {
		lg.n.t.Logf("explain: %v", err)
		return
	}
	for h := max(1, t.Height-3); h <= t.Height+1; h++ {
		b, err := c.Block(ctx, h)
		if err != nil {
			continue
		}
		line := fmt.Sprintf("block %d proposer %s, %d txs; from %s:", h, b.Proposer, b.NumTxs, t.From)
		for i, th := range b.Txs {
			x, err := c.Tx(ctx, th)
			if err == nil && x.From == t.From {
				line += fmt.Sprintf(" [%d] nonce %d %s;", i, x.Nonce, x.Status)
			}
		}
		lg.n.t.Log(line)
	}
}
