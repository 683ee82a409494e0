package node_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/node"
)

// TestConcurrentSubmissionsAreAllCommittedOnce: many goroutines submit at
// once into a live node whose mempool runs CheckTx calls concurrently,
// including several goroutines racing over one sender's consecutive
// nonces (a nonce that arrives before its predecessor is refused as a gap
// and retried, as a wallet would). Every transfer is committed exactly
// once and every balance is what the transfers add up to.
func TestConcurrentSubmissionsAreAllCommittedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const senders, each = 12, 8
	home := t.TempDir()
	var accounts []app.GenesisAccount
	for i := range senders {
		_, addr := key(byte(10 + i))
		accounts = append(accounts, app.GenesisAccount{Address: addr, Balance: 100 * coin.Unit})
	}
	_, sink := key(99)
	if _, err := node.InitSingle(home, node.GenesisSpec{ChainID: "aitbc-conc", App: app.Genesis{Params: app.DefaultParams(), Accounts: accounts}}); err != nil {
		t.Fatal(err)
	}
	r := start(t, home)
	defer r.stop(t)
	if err := r.n.WaitHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fee := app.DefaultParams().MinFee
	var raws [][]byte
	for i := range senders {
		priv, _ := key(byte(10 + i))
		for n := range each {
			x := &tx.Tx{ChainID: "aitbc-conc", Nonce: uint64(n), Fee: fee, Msg: bank.NewSendMsg(sink, coin.Unit)}
			x.Sign(priv)
			raw, _ := x.Encode()
			raws = append(raws, raw)
		}
	}
	// Four goroutines per sender, each taking the sender's next nonce as
	// it comes: they race over consecutive nonces of one account.
	var wg sync.WaitGroup
	hashes := make([]string, len(raws))
	for i := range senders {
		var mu sync.Mutex
		next := 0
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					k := next
					next++
					mu.Unlock()
					if k >= each {
						return
					}
					raw := raws[i*each+k]
					for {
						h, err := r.n.Submit(ctx, raw)
						if errors.Is(err, tx.ErrNonceGap) {
							time.Sleep(2 * time.Millisecond)
							continue
						}
						if err != nil {
							t.Errorf("sender %d nonce %d: %v", i, k, err)
							return
						}
						hashes[i*each+k] = h
						break
					}
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, h := range hashes {
		if _, err := r.client.WaitTx(ctx, h, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if acc, err := r.client.Account(ctx, sink); err != nil || acc.Balance != senders*each*coin.Unit {
		t.Fatalf("sink = %+v %v, want %d units", acc, err, senders*each)
	}
	for i := range senders {
		_, addr := key(byte(10 + i))
		acc, err := r.client.Account(ctx, addr)
		want := 100*coin.Unit - each*(coin.Unit+fee)
		if err != nil || acc.Balance != want || acc.Nonce != each {
			t.Errorf("sender %d = %+v %v, want balance %s nonce %d", i, acc, err, want, each)
		}
	}
}
