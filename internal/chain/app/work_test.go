package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// TestProposalIsCappedByMeasuredWork: with a work budget of 1 s, a block of
// 250 transfers that took 100 ms (0.4 ms each, on a clock the test moves)
// caps the next proposal at 2,500 transactions; before any block of at
// least 200 transfers was measured (a small one does not count) the cap is
// 10,000.
func TestProposalIsCappedByMeasuredWork(t *testing.T) {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := time.Unix(1_700_000_000, 0)
	now := func() time.Time { clock = clock.Add(100 * time.Millisecond); return clock }
	a, err := app.New(st, chainID, nil, app.WithWorkBudget(time.Second, now))
	if err != nil {
		t.Fatal(err)
	}
	g := fixedSupply(app.Genesis{Params: app.DefaultParams(), Accounts: []app.GenesisAccount{{Address: alice.addr, Balance: 1_000_000 * coin.Unit}}})
	gb, _ := json.Marshal(g)
	ctx := context.Background()
	if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: chainID, AppStateBytes: gb}); err != nil {
		t.Fatal(err)
	}
	fee := g.Params.MinFee
	var nonce uint64
	block := func(height int64, n int) {
		var txs [][]byte
		for range n {
			txs = append(txs, send(alice, bob.addr, 1, nonce, fee, chainID))
			nonce++
		}
		r, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: height, Time: time.Unix(1_700_000_000+height, 0), Txs: txs, ProposerAddress: val.addr[:]})
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range r.TxResults {
			if x.Code != 0 {
				t.Fatalf("block %d tx %d: %s", height, i, x.Log)
			}
		}
		if _, err := a.Commit(ctx, &abci.RequestCommit{}); err != nil {
			t.Fatal(err)
		}
	}
	if c := a.ProposalCap(); c != 10_000 {
		t.Fatalf("cap %d before any block, want 10,000", c)
	}
	block(1, 10)
	if c := a.ProposalCap(); c != 10_000 {
		t.Fatalf("cap %d after a block of 10, want still 10,000", c)
	}
	block(2, 250)
	if c := a.ProposalCap(); c != 2500 {
		t.Fatalf("cap %d after 250 transfers in 100 ms with a 1 s budget, want 2500", c)
	}
	var offered [][]byte
	for i := range 3000 {
		offered = append(offered, send(alice, bob.addr, 1, nonce+uint64(i), fee, chainID))
	}
	r, err := a.PrepareProposal(ctx, &abci.RequestPrepareProposal{Txs: offered, MaxTxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Txs) != 2500 {
		t.Fatalf("proposal of %d transactions, want the 2,500 the budget allows", len(r.Txs))
	}
}
