package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/node"
)

// TestExplorerQueriesShowABlocksTransactionsAndTheSigningValidator: a
// block's transactions come decoded in pages, in block order, and the one
// validator has signed every block of the window.
func TestExplorerQueriesShowABlocksTransactionsAndTheSigningValidator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	home := t.TempDir()
	genPriv, genAddr := key(1)
	_, bob := key(2)
	if _, err := node.InitSingle(home, node.GenesisSpec{ChainID: "aitbc-explorer", App: app.Genesis{
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
	ci, _ := r.client.Chain(ctx)
	var hashes []string
	var raws [][]byte
	for i := uint64(0); i < 5; i++ {
		x := &tx.Tx{ChainID: ci.ChainID, Nonce: i, Fee: ci.MinFee, Msg: bank.NewSendMsg(bob, coin.Unit)}
		x.Sign(genPriv)
		raw, _ := x.Encode()
		raws = append(raws, raw)
	}
	res, err := r.client.SubmitMany(ctx, raws)
	if err != nil || res.Accepted != 5 {
		t.Fatalf("submit: %+v %v", res, err)
	}
	for _, e := range res.Results {
		hashes = append(hashes, e.TxHash)
	}
	last, err := r.client.WaitTx(ctx, hashes[4], 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := r.client.Tx(ctx, hashes[0])
	if first.Height != last.Height {
		t.Skipf("the five transfers landed in blocks %d and %d", first.Height, last.Height)
	}
	page, err := r.client.BlockTransactions(ctx, last.Height, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 5 || page.Offset != 1 || len(page.Transactions) != 3 {
		t.Fatalf("page %+v", page)
	}
	for i, got := range page.Transactions {
		if got.Hash != hashes[i+1] || got.Type != bank.TypeSend || got.Status != "committed" || got.From != genAddr || got.Body == nil {
			t.Errorf("entry %d: %+v", i, got)
		}
	}
	if _, err := r.client.BlockTransactions(ctx, last.Height+1000, 0, 10); !httpx.IsCode(err, "block_not_found") {
		t.Errorf("a block above the head: %v", err)
	}

	if err := r.n.WaitHeight(ctx, last.Height+2); err != nil {
		t.Fatal(err)
	}
	vs, err := r.client.Validators(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if vs.Window != 3 || len(vs.Validators) != 1 {
		t.Fatalf("validators %+v", vs)
	}
	v := vs.Validators[0]
	if v.Signed != 3 || v.Proposed != 3 || !v.ThisNode || v.Power < 1 {
		t.Errorf("validator %+v: the only validator signs and proposes every block", v)
	}
}
