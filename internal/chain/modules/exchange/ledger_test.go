package exchange_test

import (
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// TestSeveralOrdersOfOneTraderSettleInOneBlock: EndBlock pays each trader
// once per denomination for all its fills and returned holds, and lowers
// its open-order count by all the orders closed. Alice's three sells and
// Bob's two buys all fill in one block (Bob's higher buy returns the
// difference to the clearing price); the balances are the sums, the
// module account is empty, and with at most three open orders each both
// can place three again (the counters came down by three and two).
func TestSeveralOrdersOfOneTraderSettleInOneBlock(t *testing.T) {
	p := exchange.DefaultParams()
	p.MaxOpenPerAccount = 3
	w := newWorld(t, &p)
	w.fund(alice, 100*aitbc, 0)
	w.fund(bob, 0, 1_000_000)
	for _, price := range []uint64{ref, ref - 100, ref - 200} {
		w.mustPlace(alice, exchange.Sell, false, price, 10*aitbc)
	}
	w.mustPlace(bob, exchange.Buy, false, ref, 20*aitbc)
	w.mustPlace(bob, exchange.Buy, false, ref*2, 10*aitbc)
	if _, err := w.place(alice, exchange.Sell, false, ref, 10*aitbc); !errors.Is(err, exchange.ErrTooManyOpen) {
		t.Fatalf("a fourth open order: %v, want too_many_open_orders", err)
	}
	w.endBlock() // audits exchange/held, exchange/book and the bank's invariants

	// 30 AITBC trade at the clearing price ref (1,000,000 msat): 30,000 sat.
	if got := w.bal(alice, "btc"); got != 30_000 {
		t.Fatalf("alice btc %d, want 30000", got)
	}
	if got := w.bal(alice, "aitbc"); got != 100*aitbc-30*aitbc-30_000 {
		t.Fatalf("alice aitbc %d, want 70 AITBC less 0.03 fee", got)
	}
	if got := w.bal(bob, "aitbc"); got != 30*aitbc-30_000 {
		t.Fatalf("bob aitbc %d, want 30 AITBC less 0.03 fee", got)
	}
	if got := w.bal(bob, "btc"); got != 1_000_000-30_000 {
		t.Fatalf("bob btc %d: the buy at twice the price must get its unused 10,000 sat back", got)
	}
	if got := w.bal(w.k.Account(), "aitbc") + w.bal(w.k.Account(), "btc"); got != 0 {
		t.Fatalf("module account keeps %d after every order filled", got)
	}
	if got := w.bal(w.bank.Collector(), "aitbc"); got != 60_000 {
		t.Fatalf("fees %d, want 0.06 AITBC", got)
	}
	for i := 0; i < 3; i++ {
		w.mustPlace(alice, exchange.Sell, false, ref*3, aitbc)
		w.mustPlace(bob, exchange.Buy, false, ref/2, aitbc)
	}
	w.endBlock()
}

// TestParamsFollowTheStoredValue: the keeper remembers the last decoded
// parameters, and must still read each state's own: two chains' states
// with different parameters, read alternately through one keeper.
func TestParamsFollowTheStoredValue(t *testing.T) {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := bank.NewKeeper()
	k := exchange.NewKeeper(b)
	pa, pb := exchange.DefaultParams(), exchange.DefaultParams()
	pa.FeeBps, pb.FeeBps = 10, 25
	kva, kvb := state.NewCache(st), state.NewCache(st)
	for _, c := range []struct {
		kv *state.Cache
		p  exchange.Params
	}{{kva, pa}, {kvb, pb}} {
		if err := k.InitGenesis(&module.Context{KV: c.kv}, mustJSON(t, c.p)); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range []struct {
		kv   *state.Cache
		want uint64
	}{{kva, 10}, {kvb, 25}, {kva, 10}, {kva, 10}, {kvb, 25}} {
		got, err := k.Params(c.kv)
		if err != nil {
			t.Fatal(err)
		}
		if got.FeeBps != c.want {
			t.Fatalf("read %d: fee_bps %d, want %d", i, got.FeeBps, c.want)
		}
	}
	got, err := k.Params(state.NewCache(st)) // nothing stored: the defaults
	if err != nil || got != exchange.DefaultParams() {
		t.Fatalf("no parameters stored: %+v, %v", got, err)
	}
}
