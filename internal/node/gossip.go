package node

import (
	"context"
	"runtime"
	"sync"

	"github.com/cometbft/cometbft/mempool"
	"github.com/cometbft/cometbft/p2p"
	protomem "github.com/cometbft/cometbft/proto/tendermint/mempool"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// verifyingReactor is CometBFT's mempool reactor with one change:
// transactions that peers gossip have their signatures checked in batches
// before they reach CheckTx.
//
// CometBFT hands each gossiped transaction to CheckTx on its own, and a
// signature check is the largest part of CheckTx's cost; a batch of 8 or
// more valid signatures costs about half as much per signature. So Receive
// queues a peer's transaction messages instead of checking them at once,
// and one worker takes whatever has queued up (one message when the load
// is light, many under load), verifies their signatures together, and then
// passes the messages on to the real reactor in arrival order, whose
// CheckTx finds each verdict cached. Each peer's messages arrive from one
// goroutine, so every peer's order is kept. A full queue blocks the peer's
// receive routine, as a slow CheckTx did before.
type verifyingReactor struct {
	*mempool.Reactor
	app   *app.App
	queue chan p2p.Envelope
	done  chan struct{}

	// fromPeers, when set (Config.GossipOnce), holds the hashes of
	// transactions that peers sent this node; they are not relayed to
	// persistent peers (onceFilter).
	fromPeers *hashRing
}

const (
	// gossipQueue bounds the messages waiting for their signatures.
	gossipQueue = 1024
	// maxGossipBatch bounds the transactions taken from the queue at once
	// (verified in batches of up to 64, one per CPU): the first message
	// waits for the last.
	maxGossipBatch = 128
)

// installVerifyingReactor replaces the node's mempool reactor in its P2P
// switch (before the switch starts) with one that batches signature checks.
func installVerifyingReactor(sw *p2p.Switch, a *app.App, once bool) *verifyingReactor {
	orig, ok := sw.Reactor("MEMPOOL").(*mempool.Reactor)
	if !ok {
		return nil // a build without CometBFT's reactor: leave it alone
	}
	r := &verifyingReactor{Reactor: orig, app: a, queue: make(chan p2p.Envelope, gossipQueue), done: make(chan struct{})}
	if once {
		r.fromPeers = newHashRing(gossipOnceMemory)
	}
	sw.RemoveReactor("MEMPOOL", orig)
	sw.AddReactor("MEMPOOL", r)
	return r
}

// Receive implements p2p.Reactor.
func (r *verifyingReactor) Receive(e p2p.Envelope) {
	if _, ok := e.Message.(*protomem.Txs); !ok {
		r.Reactor.Receive(e) // the reactor refuses it and stops the peer
		return
	}
	select {
	case r.queue <- e:
	case <-r.done:
	}
}

// run verifies and forwards queued messages until ctx ends.
func (r *verifyingReactor) run(ctx context.Context) {
	defer close(r.done)
	for {
		var batch []p2p.Envelope
		select {
		case e := <-r.queue:
			batch = append(batch, e)
		case <-ctx.Done():
			return
		}
		n := len(batch[0].Message.(*protomem.Txs).Txs)
	more:
		for n < maxGossipBatch {
			select {
			case e := <-r.queue:
				batch = append(batch, e)
				n += len(e.Message.(*protomem.Txs).Txs)
			default:
				break more
			}
		}
		raws := make([][]byte, 0, n)
		for _, e := range batch {
			raws = append(raws, e.Message.(*protomem.Txs).Txs...)
		}
		if r.fromPeers != nil {
			for _, raw := range raws {
				r.fromPeers.add(tx.Hash(raw))
			}
		}
		preVerifyParallel(r.app, raws)
		for _, e := range batch {
			r.Reactor.Receive(e)
		}
	}
}

// preVerifyParallel checks raws' signatures in batches, one per CPU when
// there are enough to share, and returns each one's PreVerify error.
func preVerifyParallel(a *app.App, raws [][]byte) []error {
	w := min(workers(), len(raws)/16)
	if w <= 1 {
		return a.PreVerifyBatch(raws)
	}
	errs := make([]error, len(raws))
	var wg sync.WaitGroup
	per := (len(raws) + w - 1) / w
	for lo := 0; lo < len(raws); lo += per {
		hi := min(lo+per, len(raws))
		wg.Add(1)
		go func() {
			defer wg.Done()
			copy(errs[lo:hi], a.PreVerifyBatch(raws[lo:hi]))
		}()
	}
	wg.Wait()
	return errs
}

func workers() int { return max(runtime.GOMAXPROCS(0), 1) }

// gossipOnceMemory bounds the hashes remembered for GossipOnce (32 bytes
// each): more than a deep mempool holds.
const gossipOnceMemory = 200_000

// AddPeer implements p2p.Reactor: with GossipOnce, a persistent peer's
// gossip goes through onceFilter.
func (r *verifyingReactor) AddPeer(peer p2p.Peer) {
	if r.fromPeers != nil && peer.IsPersistent() {
		peer = onceFilter{Peer: peer, fromPeers: r.fromPeers}
	}
	r.Reactor.AddPeer(peer)
}

// onceFilter is a persistent peer as CometBFT's mempool reactor sees it
// when transactions are to cross each link once (Config.GossipOnce): it
// drops (reporting success) the transactions this node received from a
// peer. CometBFT relays every transaction to every peer that did not send
// it, so in a full mesh each validator received each transaction from the
// node it was submitted to and again from every other peer that relayed it
// (two or three copies in a mesh of four, each costing a decryption, a
// decode and a hash). In a full mesh of persistent peers the node a
// transaction was submitted to already sends it to every other node, so
// nothing is lost; in another topology a transaction could reach some
// validators only through a relay, hence the option.
type onceFilter struct {
	p2p.Peer
	fromPeers *hashRing
}

// Send implements p2p.Peer.
func (p onceFilter) Send(e p2p.Envelope) bool {
	if m, ok := e.Message.(*protomem.Txs); ok && e.ChannelID == mempool.MempoolChannel && len(m.Txs) == 1 && p.fromPeers.has(tx.Hash(m.Txs[0])) {
		return true
	}
	return p.Peer.Send(e)
}

// hashRing remembers the last n hashes added. Safe for concurrent use.
type hashRing struct {
	mu   sync.Mutex
	set  map[[32]byte]struct{}
	ring [][32]byte
	next int
}

func newHashRing(n int) *hashRing {
	return &hashRing{set: make(map[[32]byte]struct{}, n), ring: make([][32]byte, 0, n)}
}

func (h *hashRing) add(k [32]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.set[k]; ok {
		return
	}
	if len(h.ring) < cap(h.ring) {
		h.ring = append(h.ring, k)
	} else {
		delete(h.set, h.ring[h.next])
		h.ring[h.next] = k
		h.next = (h.next + 1) % len(h.ring)
	}
	h.set[k] = struct{}{}
}

func (h *hashRing) has(k [32]byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.set[k]
	return ok
}
