package node_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/node"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
)

func freePort(t *testing.T) int {
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type running struct {
	n      *node.Node
	client *rpc.Client
	srv    *httptest.Server
}

func start(t *testing.T, home string) *running {
	t.Helper()
	n, err := node.New(node.Config{
		Home: home, BlockTime: 100 * time.Millisecond, DisablePEX: true,
		P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rpc.NewServer(n, node.HTTPError, prometheus.NewRegistry(), nil))
	return &running{n: n, client: rpc.NewClient(srv.URL), srv: srv}
}

func (r *running) stop(t *testing.T) {
	r.srv.Close()
	if err := r.n.Stop(); err != nil {
		t.Fatal(err)
	}
}

func key(b byte) (ed25519.PrivateKey, address.Address) {
	p := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32))
	return p, address.FromPubKey(p.Public().(ed25519.PublicKey))
}

func TestNodeCommitsTransfersAndSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	home := t.TempDir()
	genPriv, genAddr := key(1)
	_, bob := key(2)
	if _, err := node.InitSingle(home, node.GenesisSpec{ChainID: "aitbc-itest", App: app.Genesis{
		Params:   app.DefaultParams(),
		Accounts: []app.GenesisAccount{{Name: "genesis-ops", Address: genAddr, Balance: 1_000_000 * coin.Unit}},
	}}); err != nil {
		t.Fatal(err)
	}
	r := start(t, home)
	if err := r.n.WaitHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	ci, err := r.client.Chain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Every block mints its reward: supply = genesis + minted − burned.
	// The genesis supply includes the faucet's funding.
	if ci.ChainID != "aitbc-itest" || ci.GenesisTotal != 1_000_000*coin.Unit+faucet.DefaultParams().Fund || ci.Supply != ci.GenesisTotal+ci.Minted-ci.Burned {
		t.Fatalf("chain info %+v", ci)
	}

	// Ten transfers with consecutive nonces, submitted without waiting.
	var last string
	for i := uint64(0); i < 10; i++ {
		x := &tx.Tx{ChainID: ci.ChainID, Nonce: i, Fee: ci.MinFee, Msg: bank.NewSendMsg(bob, 10*coin.Unit)}
		x.Sign(genPriv)
		raw, _ := x.Encode()
		res, err := r.client.Submit(ctx, raw)
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		last = res.TxHash
		if i == 0 {
			// The same bytes again: refused by the mempool cache.
			if _, err := r.client.Submit(ctx, raw); !httpx.IsCode(err, "tx_already_known") {
				t.Fatalf("resubmission: %v", err)
			}
		}
	}
	got, err := r.client.WaitTx(ctx, last, 50*time.Millisecond)
	if err != nil || got.Status != "committed" {
		t.Fatalf("last transfer: %+v %v", got, err)
	}
	acc, _ := r.client.Account(ctx, bob)
	if acc.Balance != 100*coin.Unit {
		t.Fatalf("bob = %s, want 100", acc.Balance)
	}
	ci, _ = r.client.Chain(ctx)
	wantBurn := 10 * ci.MinFee.MulDiv(ci.BurnBps, 10_000)
	if ci.Burned != wantBurn || ci.Supply+ci.Burned != ci.GenesisTotal+ci.Minted {
		t.Fatalf("supply %s burned %s genesis %s minted %s, want burned %s", ci.Supply, ci.Burned, ci.GenesisTotal, ci.Minted, wantBurn)
	}

	// Inclusion proof against the block header's data hash.
	p, err := r.client.Proof(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := r.client.Block(ctx, p.Height)
	if err != nil || blk.DataHash != p.DataHash {
		t.Fatalf("block %d data hash %s, proof %s (%v)", p.Height, blk.DataHash, p.DataHash, err)
	}
	// The head (read from the block meta) names the same block as the full block.
	head, err := r.n.Head()
	if err != nil {
		t.Fatal(err)
	}
	if hb, err := r.n.Block(head.Height); err != nil || hb.Hash != head.Hash || !hb.Time.Equal(head.Time) {
		t.Fatalf("head %+v, block at its height %+v (%v)", head, hb, err)
	}
	v, err := r.client.VerifyTx(ctx, last)
	if err != nil || !v.Included || !v.Signature || v.Height != p.Height {
		t.Fatalf("verify: %+v %v", v, err)
	}
	list, err := r.client.Transactions(ctx, bob, 50)
	if err != nil || len(list.Transactions) != 10 {
		t.Fatalf("bob's history: %d entries, %v", len(list.Transactions), err)
	}

	// Bad submissions are refused with their codes and change nothing.
	x := &tx.Tx{ChainID: ci.ChainID, Nonce: 3, Fee: ci.MinFee, Msg: bank.NewSendMsg(bob, coin.Unit)}
	x.Sign(genPriv)
	raw, _ := x.Encode()
	if _, err := r.client.Submit(ctx, raw); !httpx.IsCode(err, "invalid_nonce") {
		t.Fatalf("replayed nonce: %v", err)
	}
	if _, err := r.client.Submit(ctx, []byte{1, 2, 3}); !httpx.IsCode(err, "malformed_tx") {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := r.client.Tx(ctx, "0x"+fmt.Sprintf("%064x", 7)); !httpx.IsCode(err, "tx_not_found") {
		t.Fatalf("unknown tx: %v", err)
	}

	genAcc, _ := r.client.Account(ctx, genAddr)
	height, appHash := r.n.App().Height()
	r.stop(t)

	// Restart on the same data: every balance, nonce and the app hash survive.
	r = start(t, home)
	defer r.stop(t)
	h2, ah2 := r.n.App().Height()
	if h2 < height {
		t.Fatalf("height after restart %d < %d", h2, height)
	}
	if h2 == height && !bytes.Equal(ah2, appHash) {
		t.Fatalf("app hash changed across restart")
	}
	if err := r.n.WaitHeight(ctx, h2+2); err != nil {
		t.Fatalf("chain does not advance after restart: %v", err)
	}
	acc2, _ := r.client.Account(ctx, bob)
	gen2, _ := r.client.Account(ctx, genAddr)
	if acc2.Balance != acc.Balance || gen2.Balance != genAcc.Balance || gen2.Nonce != 10 {
		t.Fatalf("after restart bob %s (was %s), genesis %s nonce %d (was %s, 10)", acc2.Balance, acc.Balance, gen2.Balance, gen2.Nonce, genAcc.Balance)
	}
	if got, err := r.client.Tx(ctx, last); err != nil || got.Status != "committed" {
		t.Fatalf("tx after restart: %+v %v", got, err)
	}
}

// TestBatchSubmitAdmitsInOrderAndRefusesEachBadOne: one request carries a
// sender's consecutive nonces (admitted in order), a skipped nonce, a
// replay of an earlier entry and garbage; each bad entry gets its own code,
// the good ones are all committed.
func TestBatchSubmitAdmitsInOrderAndRefusesEachBadOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	home := t.TempDir()
	genPriv, genAddr := key(1)
	_, bob := key(2)
	if _, err := node.InitSingle(home, node.GenesisSpec{ChainID: "aitbc-batch", App: app.Genesis{
		Params:   app.DefaultParams(),
		Accounts: []app.GenesisAccount{{Name: "genesis-ops", Address: genAddr, Balance: 1_000 * coin.Unit}},
	}}); err != nil {
		t.Fatal(err)
	}
	r := start(t, home)
	defer r.stop(t)
	if err := r.n.WaitHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	sign := func(nonce uint64) []byte {
		x := &tx.Tx{ChainID: "aitbc-batch", Nonce: nonce, Fee: app.DefaultParams().MinFee, Msg: bank.NewSendMsg(bob, coin.Unit)}
		x.Sign(genPriv)
		raw, _ := x.Encode()
		return raw
	}
	var batch [][]byte
	for n := uint64(0); n < 20; n++ {
		batch = append(batch, sign(n))
	}
	batch = append(batch, sign(25), batch[3], []byte{1, 2, 3})
	res, err := r.client.SubmitMany(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 20 || res.Rejected != 3 {
		t.Fatalf("accepted %d, rejected %d; want 20 and 3: %+v", res.Accepted, res.Rejected, res.Results[20:])
	}
	for i, want := range map[int]string{20: "nonce_gap", 21: "tx_already_known", 22: "malformed_tx"} {
		if e := res.Results[i].Error; e == nil || e.Code != want {
			t.Errorf("entry %d: %+v, want %s", i, res.Results[i], want)
		}
	}
	if _, err := r.client.WaitTx(ctx, res.Results[19].TxHash, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		got, err := r.client.Tx(ctx, res.Results[i].TxHash)
		if err != nil || got.Status != "committed" {
			t.Fatalf("entry %d: %+v %v", i, got, err)
		}
	}
	if acc, _ := r.client.Account(ctx, bob); acc.Balance != 20*coin.Unit {
		t.Fatalf("bob = %s, want 20", acc.Balance)
	}
}
