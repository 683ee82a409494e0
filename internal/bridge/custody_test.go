package bridge_test

import (
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/aitbc/aitbc/internal/bridge"
	"github.com/aitbc/aitbc/internal/btcnode"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
)

// TestTwoOfThreeOperatorsPayWithOperatorTwoStopped: a 2-of-3 bridge, each
// operator with its own AITBC wallet, Bitcoin key and daemon; operator 2
// is stopped throughout. A deposit to the account's 2-of-3 P2WSH address
// is minted by the attestations of operators 1 and 3. A withdrawal is
// proposed by operator 1 (its designated proposer) and signed by it: one
// share, so nobody can assemble it and the chain refuses to record it.
// Operator 3's daemon checks and signs it, assembles, broadcasts and is
// killed before recording the payment; restarted, it broadcasts the same
// transaction and records it: the BTC arrives once. A second withdrawal's
// designated proposer is the stopped operator 2: after the proposer
// timeout operator 3 takes over, spending the first payout's change. The
// reserves cover the supply at the end.
func TestTwoOfThreeOperatorsPayWithOperatorTwoStopped(t *testing.T) {
	e := startWith(t, 1, 3, 2)
	v := e.bridgeView()
	if len(v.Params.XPubs) != 3 || v.Params.Threshold != 2 {
		t.Fatalf("bridge params %+v, want 2 of 3 xpubs", v.Params)
	}
	alice, addr := e.user("alice")
	a, err := btcutil.DecodeAddress(addr, btcnode.Params())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(*btcutil.AddressWitnessScriptHash); !ok {
		t.Fatalf("deposit address %s is not a P2WSH", addr)
	}
	op1, op3 := e.operator(0, nil), e.operator(2, nil)

	const sat = 100_000_000
	e.deposit(addr, sat)
	e.mine(1)
	e.step(op1)
	if got := e.btcOf(alice); got != 0 {
		t.Fatalf("minted %d sat on one attestation of two", got)
	}
	e.step(op3)
	if got := e.btcOf(alice); got != sat {
		t.Fatalf("alice holds %d sat after two attestations, want %d", got, sat)
	}

	dest, err := btcnode.NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	dest.Attach(e.btc)
	const out = 30_000_000
	e.send(alice, cb.NewWithdrawMsg(dest.Addr.EncodeAddress(), out))
	e.step(op1) // proposes (withdrawal 0: operator 1's turn) and signs
	pv, err := cb.QueryPayout(e.ctx, e.node, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Complete || len(pv.Signers) != 1 || pv.Signers[0].String() != v.Params.Operators[0] {
		t.Fatalf("payout after operator 1's step: %+v", pv)
	}
	// one operator alone: no payment
	e.step(op1)
	h, err := e.d.BTC.Operators[0].Send(e.ctx, cb.NewPaidMsg(0, *mustHash(t, pv.Txid)))
	if err == nil {
		res, werr := e.node.WaitTx(e.ctx, h, 50*time.Millisecond)
		if werr != nil || res.Status == "committed" || res.Code != cb.ErrUnsigned.Code {
			t.Fatalf("payment recorded with one share: %+v %v", res, werr)
		}
	} else if !isCode(err, cb.ErrUnsigned) {
		t.Fatalf("payment with one share: %v", err)
	}
	if pool, err := e.btc.Client.GetRawMempool(); err != nil || len(pool) != 0 {
		t.Fatalf("mempool after one share: %v %v", pool, err)
	}

	// operator 3 signs, assembles, broadcasts, and is killed before recording
	crashed := e.operator(2, crashAt("broadcast"))
	if err := crashed.Step(e.ctx); !errors.Is(err, errCrash) {
		t.Fatalf("step: %v, want the crash after broadcasting", err)
	}
	e.mine(1)
	op3 = e.operator(2, nil) // restarted
	e.step(op3)
	e.step(op1)
	w, err := cb.QueryWithdrawal(e.ctx, e.node, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dest.Balance()
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != "paid" || w.PaidTx != pv.Txid || got != int64(w.Payout) {
		t.Fatalf("withdrawal %+v; the address received %d sat, want %d once by %s", w, got, w.Payout, pv.Txid)
	}

	// withdrawal 1: operator 2's turn, but it is down; operator 3 takes over
	e.send(alice, cb.NewWithdrawMsg(dest.Addr.EncodeAddress(), out))
	if w1, err := cb.QueryWithdrawal(e.ctx, e.node, 1); err != nil || w1.Proposer != v.Params.Operators[1] {
		t.Fatalf("withdrawal 1's proposer %+v (%v), want operator 2", w1, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		e.mine(1)
		e.step(op3)
		e.step(op1)
		w1, err := cb.QueryWithdrawal(e.ctx, e.node, 1)
		if err != nil {
			t.Fatal(err)
		}
		if w1.Status == "paid" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("withdrawal 1 not paid with operator 2 down: %+v", w1)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.mine(1)
	if got, err := dest.Balance(); err != nil || got != 2*int64(w.Payout) {
		t.Fatalf("the address holds %d sat after two payouts, want %d (%v)", got, 2*w.Payout, err)
	}
	r, err := bridge.Reserves(e.ctx, e.node, e.btc.Client)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(sat - 2*out); r.ReserveSat != want || r.SupplySat != uint64(want) || !r.OK {
		t.Fatalf("reserves %+v, want %d held against a supply of %d", r, want, want)
	}
}
