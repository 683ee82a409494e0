package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"
	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/mempool"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/mock"
	protomem "github.com/cometbft/cometbft/proto/tendermint/mempool"
	"github.com/cometbft/cometbft/proxy"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TestGossipedTransactionsAreVerifiedInOrder: transactions that a peer
// gossips reach the mempool through the batching reactor in the order the
// peer sent them (a sender's consecutive nonces, each in its own message,
// all admitted), and one with a bad signature among them is refused while
// the rest of its batch is admitted.
func TestGossipedTransactionsAreVerifiedInOrder(t *testing.T) {
	const chain = "aitbc-gossip-test"
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := app.New(st, chain, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	mallory := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	addr := func(k ed25519.PrivateKey) address.Address { return address.FromPubKey(k.Public().(ed25519.PublicKey)) }
	g := app.Genesis{Params: app.DefaultParams(), Accounts: []app.GenesisAccount{
		{Address: addr(alice), Balance: 1000 * coin.Unit}, {Address: addr(mallory), Balance: 1000 * coin.Unit},
	}}
	gb, _ := json.Marshal(g)
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chain, AppStateBytes: gb}); err != nil {
		t.Fatal(err)
	}
	send := func(from ed25519.PrivateKey, nonce uint64, corrupt bool) []byte {
		x := &tx.Tx{ChainID: chain, Nonce: nonce, Fee: g.Params.MinFee, Msg: bank.NewSendMsg(address.Address{9}, coin.Unit)}
		x.Sign(from)
		if corrupt {
			x.Sig[5] ^= 1
		}
		raw, _ := x.Encode()
		return raw
	}

	mcfg := cfg.DefaultMempoolConfig()
	mem := mempool.NewCListMempool(mcfg, proxy.NewAppConnMempool(abcicli.NewLocalClient(nil, a), proxy.NopMetrics()), 0)
	r := &verifyingReactor{Reactor: mempool.NewReactor(mcfg, mem), app: a, queue: make(chan p2p.Envelope, gossipQueue), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go r.run(ctx)
	defer func() { cancel(); <-r.done }()
	peer := mock.NewPeer(nil)
	r.InitPeer(peer)

	var want [][]byte
	for n := uint64(0); n < 20; n++ {
		raw := send(alice, n, false)
		want = append(want, raw)
		msg := [][]byte{raw}
		if n == 7 {
			msg = append(msg, send(mallory, 0, true)) // a forged one in the same message
		}
		r.Receive(p2p.Envelope{Src: peer, ChannelID: mempool.MempoolChannel, Message: &protomem.Txs{Txs: msg}})
	}
	deadline := time.Now().Add(10 * time.Second)
	for mem.Size() < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let a wrongly admitted extra show up
	got := mem.ReapMaxTxs(-1)
	if len(got) != len(want) {
		t.Fatalf("mempool holds %d transactions, want alice's %d (the forged one refused)", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("mempool position %d is not alice's nonce %d", i, i)
		}
	}
	if n, _ := a.NonceOf(addr(mallory)); n != 0 {
		t.Fatalf("the forged transaction moved mallory's nonce to %d", n)
	}
}

// sentPeer records what the mempool reactor sends it.
type sentPeer struct {
	*mock.Peer
	sent [][]byte
}

func (p *sentPeer) Send(e p2p.Envelope) bool {
	if m, ok := e.Message.(*protomem.Txs); ok {
		p.sent = append(p.sent, m.Txs...)
	}
	return true
}

// TestGossipOnceDoesNotRelayPeersTransactions: with GossipOnce a persistent
// peer is sent the transactions submitted to this node but not those that
// another peer sent it (every node of a full mesh had them from their
// origin already); the filter reports success, so the reactor moves on.
func TestGossipOnceDoesNotRelayPeersTransactions(t *testing.T) {
	ring := newHashRing(4)
	relayed, local := []byte("from a peer"), []byte("submitted here")
	ring.add(tx.Hash(relayed))
	p := &sentPeer{Peer: mock.NewPeer(nil)}
	f := onceFilter{Peer: p, fromPeers: ring}
	for _, raw := range [][]byte{relayed, local} {
		if !f.Send(p2p.Envelope{ChannelID: mempool.MempoolChannel, Message: &protomem.Txs{Txs: [][]byte{raw}}}) {
			t.Fatal("the filter reported a failed send")
		}
	}
	if len(p.sent) != 1 || !bytes.Equal(p.sent[0], local) {
		t.Fatalf("sent %q, want only the local transaction", p.sent)
	}
}

// TestHashRingForgetsTheOldest: the ring holds at most n hashes, forgetting
// the oldest first.
func TestHashRingForgetsTheOldest(t *testing.T) {
	r := newHashRing(3)
	for i := range 5 {
		r.add([32]byte{byte(i)})
	}
	r.add([32]byte{4}) // again: no effect
	for i := range 5 {
		if got, want := r.has([32]byte{byte(i)}), i >= 2; got != want {
			t.Fatalf("hash %d: remembered %v, want %v", i, got, want)
		}
	}
	if len(r.set) != 3 {
		t.Fatalf("%d hashes held, max 3", len(r.set))
	}
}
