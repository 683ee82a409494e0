package devnet_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/pools"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/walletd"
)

// TestPoolOnADevnet: a new operator (funded by the faucet) creates a pool
// with a 10% fee; the devnet's miner joins; its job pay and its epoch
// reward go to the pool, and at the epoch's end the operator gets exactly
// floor(earned × 10%) (the one member did all the work, so the rest is its
// share). Bad input is refused by CheckTx with the pools' codes.
func TestPoolOnADevnet(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key, err := walletd.ReadAPIKey(e.home)
	if err != nil {
		t.Fatal(err)
	}
	wc := walletd.NewClient(e.d.WalletURL(), key)
	// The miner's wallet is a service wallet: the admin key does not sign
	// with it, the devnet's service key does.
	sk, err := os.ReadFile(walletd.ServiceKeyPath(e.home))
	if err != nil {
		t.Fatal(err)
	}
	svcC := walletd.NewClient(e.d.WalletURL(), strings.TrimSpace(string(sk)))
	clientFor := func(wallet string) *walletd.Client {
		if wallet == devnet.MinerWallet(0) {
			return svcC
		}
		return wc
	}
	pw := "123"
	op, err := wc.Create(ctx, "pool-operator", pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := httpx.Do(ctx, nil, "POST", e.d.RPCURL()+"/api/v1/faucet", nil, map[string]any{"address": op.Address.String()}, nil); err != nil {
		t.Fatal(err)
	}
	waitBal := func(want coin.Amount) {
		for e.balance(op.Address) != want && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitBal(1000 * coin.Unit)
	submit := func(wallet string, msg tx.Msg) error {
		t.Helper()
		s, err := clientFor(wallet).SignAndSubmit(ctx, wallet, pw, msg, 0)
		if err != nil {
			return err
		}
		v, err := e.node.WaitTx(ctx, s.TxHash, 50*time.Millisecond)
		if err != nil || v.Status != "committed" {
			t.Fatalf("%s: %v %+v", msg.Type, err, v)
		}
		return nil
	}
	refused := func(wallet string, msg tx.Msg, code string) {
		t.Helper()
		if err := submit(wallet, msg); !httpx.IsCode(err, code) {
			t.Fatalf("%s by %s: %v, want %s", msg.Type, wallet, err, code)
		}
	}
	refused("pool-operator", pools.NewCreateMsg("alpha", 10_001), "pool_fee_too_high")
	if err := submit("pool-operator", pools.NewCreateMsg("alpha", 1000)); err != nil {
		t.Fatal(err)
	}
	ci, err := e.node.Chain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := e.balance(op.Address) // 1000 less the fees of one create (a refused one costs nothing)
	if start != 1000*coin.Unit-ci.MinFee {
		t.Fatalf("operator holds %s after creating, want 1000 less %s", start, ci.MinFee)
	}
	miner := devnet.MinerWallet(0)
	refused(miner, pools.NewLeaveMsg(), "not_in_pool")
	refused("pool-operator", pools.NewJoinMsg("alpha"), "not_a_miner")
	if err := submit(miner, pools.NewJoinMsg("alpha")); err != nil {
		t.Fatal(err)
	}
	refused(miner, pools.NewJoinMsg("alpha"), "already_in_pool")

	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 40, "temperature": 0})
	e.waitStatus(e.d.APIKey, job.JobID, time.Minute, "settled")

	// The first split: the pool's paid total goes from 0 to P.
	var v pools.View
	for ctx.Err() == nil {
		if v, err = pools.Query(ctx, e.node, "alpha"); err != nil {
			t.Fatal(err)
		}
		if v.Paid > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := start + v.Paid.MulDiv(1000, 10_000)
	if got := e.balance(op.Address); got != want {
		t.Fatalf("operator holds %s after the split of %s, want %s + 10%% = %s", got, v.Paid, start, want)
	}
	if len(v.Members) != 1 || !v.Members[0].Member || v.Operator != op.Address || v.FeeBps != 1000 {
		t.Fatalf("pool: %+v", v)
	}
	if strings.TrimSpace(v.Name) != "alpha" {
		t.Fatalf("name %q", v.Name)
	}
	if err := submit(miner, pools.NewLeaveMsg()); err != nil {
		t.Fatal(err)
	}
	if v, err = pools.Query(ctx, e.node, "alpha"); err != nil || len(v.Members) > 1 || (len(v.Members) == 1 && v.Members[0].Member) {
		t.Fatalf("after leaving: %v %+v", err, v)
	}
}
