package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TestCheckTxDoesNotWaitForABlockBeingExecuted: while FinalizeBlock holds
// the consensus lock (for the whole block), CheckTx still admits
// transactions; the next height and block time it checks them with move
// only at Commit.
func TestCheckTxDoesNotWaitForABlockBeingExecuted(t *testing.T) {
	ctx := context.Background()
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := New(st, "aitbc-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	from := address.FromPubKey(k.Public().(ed25519.PublicKey))
	gb, _ := json.Marshal(Genesis{Params: DefaultParams(), Accounts: []GenesisAccount{{Address: from, Balance: 10 * coin.Unit}}})
	if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: "aitbc-test", AppStateBytes: gb}); err != nil {
		t.Fatal(err)
	}
	transfer := func(nonce uint64) []byte {
		x := &tx.Tx{ChainID: "aitbc-test", Nonce: nonce, Fee: DefaultParams().MinFee, Msg: bank.NewSendMsg(address.Address{1}, coin.Unit)}
		x.Sign(k)
		raw, _ := x.Encode()
		return raw
	}
	blockTime := time.Unix(1_700_000_000, 0)
	if _, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: 1, Time: blockTime, Txs: [][]byte{transfer(0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(ctx, &abci.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	a.checkMu.Lock()
	_, env := a.checkEnv()
	a.checkMu.Unlock()
	if env.height != 2 || !env.time.Equal(blockTime) {
		t.Fatalf("after block 1 CheckTx runs at height %d, time %s; want 2, %s", env.height, env.time, blockTime)
	}

	a.mu.Lock() // as FinalizeBlock holds it while it executes a block
	done := make(chan *abci.ResponseCheckTx, 1)
	go func() {
		r, _ := a.CheckTx(ctx, &abci.RequestCheckTx{Tx: transfer(1)})
		done <- r
	}()
	select {
	case r := <-done:
		a.mu.Unlock()
		if r.Code != abci.CodeTypeOK {
			t.Fatalf("CheckTx during a block: %d %s", r.Code, r.Log)
		}
	case <-time.After(30 * time.Second):
		a.mu.Unlock()
		t.Fatal("CheckTx waited for the block being executed")
	}
}
