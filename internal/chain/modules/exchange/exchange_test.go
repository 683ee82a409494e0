package exchange_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// world is a bank with btc, the exchange, and a block height.
type world struct {
	t    testing.TB
	kv   *state.Cache
	bank *bank.Keeper
	k    *exchange.Keeper
	h    int64
}

func newWorld(t testing.TB, params *exchange.Params) *world {
	t.Helper()
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := bank.NewKeeper()
	b.RegisterDenom(bank.Denom{Name: "btc", Decimals: 8, Minters: []string{"test"}})
	k := exchange.NewKeeper(b)
	b.AddModuleAccounts(k.Accounts()...)
	w := &world{t: t, kv: state.NewCache(st), bank: b, k: k, h: 1}
	var raw []byte
	if params != nil {
		raw = mustJSON(t, *params)
	}
	if err := k.InitGenesis(&module.Context{KV: w.kv}, raw); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) fund(a address.Address, aitbc coin.Amount, sats uint64) {
	w.t.Helper()
	if aitbc > 0 {
		if err := w.bank.Mint(w.kv, a, aitbc); err != nil {
			w.t.Fatal(err)
		}
	}
	if sats > 0 {
		if err := w.bank.MintDenom(w.kv, "test", a, "btc", coin.Amount(sats)); err != nil {
			w.t.Fatal(err)
		}
	}
}

// exec runs one message the way the app does: in a child cache kept only
// on success; a refused message must write nothing.
func (w *world) exec(signer address.Address, msg tx.Msg) (*module.Context, error) {
	w.t.Helper()
	kv := w.kv.Child()
	ctx := &module.Context{KV: kv, Height: w.h, Signer: signer}
	err := w.k.Exec(ctx, msg)
	if err == nil {
		kv.Write()
	} else if kv.Len() != 0 {
		w.t.Errorf("%s refused (%v) but wrote %d keys", msg.Type, err, kv.Len())
	}
	return ctx, err
}

func (w *world) place(signer address.Address, side exchange.Side, market bool, price, amount uint64) (uint64, error) {
	w.t.Helper()
	ctx, err := w.exec(signer, exchange.NewPlaceMsg(side, market, price, amount, 0))
	if err != nil {
		return 0, err
	}
	var id uint64
	for _, n := range ctx.Notes() {
		var got uint64
		if _, e := fmtSscanf(n, &got); e == nil {
			id = got
		}
	}
	return id, nil
}

func (w *world) mustPlace(signer address.Address, side exchange.Side, market bool, price, amount uint64) uint64 {
	w.t.Helper()
	id, err := w.place(signer, side, market, price, amount)
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

func (w *world) endBlock() {
	w.t.Helper()
	if err := w.k.EndBlock(&module.Context{KV: w.kv, Height: w.h, Time: time.Unix(1_700_000_000+w.h*2, 0)}); err != nil {
		w.t.Fatal(err)
	}
	w.audit()
	w.h++
}

func (w *world) audit() {
	w.t.Helper()
	q := module.Query{State: w.kv, Height: w.h}
	for _, inv := range append(w.k.Invariants(), w.bank.Invariants()...) {
		if inv.Name == "bank/fees" { // no fee split in this harness: the app does it
			continue
		}
		if f := inv.Check(q); f.Broken {
			w.t.Fatalf("height %d: %s broken: %s", w.h, inv.Name, f.Detail)
		}
	}
}

func (w *world) bal(a address.Address, denom string) uint64 {
	w.t.Helper()
	b, err := w.bank.BalanceOf(w.kv, a, denom)
	if err != nil {
		w.t.Fatal(err)
	}
	return uint64(b)
}

const (
	ref   = 1_000_000 // msat per AITBC: 0.00001 BTC, 100,000 AITBC per BTC
	aitbc = 1_000_000 // base units
)

var alice, bob, carol = address.Address{1}, address.Address{2}, address.Address{3}

// TestOrdersOfABlockClearTogetherAtItsEnd: orders placed during a block
// only hold funds; its end trades them at one price (the midpoint of a
// buy at 1.1 × ref and a sell at ref), pays both sides, takes the fee
// from both in AITBC and returns the buyer's unused btc.
func TestOrdersOfABlockClearTogetherAtItsEnd(t *testing.T) {
	w := newWorld(t, nil)
	w.fund(alice, 100*aitbc, 0)
	w.fund(bob, 0, 100_000)
	sell := w.mustPlace(alice, exchange.Sell, false, ref, 10*aitbc)
	buy := w.mustPlace(bob, exchange.Buy, false, ref*11/10, 10*aitbc)
	// Held until the block ends: alice 10 AITBC + 0.1% fee, bob 11,000 sat.
	if got := w.bal(alice, "aitbc"); got != 100*aitbc-10*aitbc-10_000 {
		t.Fatalf("alice after placing: %d", got)
	}
	if got := w.bal(bob, "btc"); got != 100_000-11_000 {
		t.Fatalf("bob after placing: %d", got)
	}
	w.endBlock()
	// Cleared at 1,050,000 msat: 10 AITBC = 10,500 sat.
	if got := w.bal(alice, "btc"); got != 10_500 {
		t.Fatalf("alice btc %d, want 10500", got)
	}
	if got := w.bal(bob, "aitbc"); got != 10*aitbc-10_000 {
		t.Fatalf("bob aitbc %d, want 9.99 AITBC", got)
	}
	if got := w.bal(bob, "btc"); got != 100_000-10_500 {
		t.Fatalf("bob btc %d: the unused 500 sat must come back", got)
	}
	if got := w.bal(w.bank.Collector(), "aitbc"); got != 20_000 {
		t.Fatalf("fees %d, want 0.02 AITBC", got)
	}
	if got := w.bal(w.k.Account(), "aitbc") + w.bal(w.k.Account(), "btc"); got != 0 {
		t.Fatalf("module account keeps %d after both orders filled", got)
	}
	for _, id := range []uint64{sell, buy} {
		if _, err := w.exec(alice, exchange.NewCancelMsg(id)); !errors.Is(err, exchange.ErrOrderNotFound) {
			t.Fatalf("filled order %d still cancellable: %v", id, err)
		}
	}
	tv := mustQuery[exchange.TradesView](t, w, "/api/v1/exchange/trades", nil)
	if len(tv.Trades) != 1 || tv.Trades[0].PriceMsat != 1_050_000 || tv.Trades[0].QuoteSats != 10_500 || tv.Trades[0].Price != "0.0000105" {
		t.Fatalf("trades %+v", tv.Trades)
	}
	tk := mustQuery[exchange.Ticker](t, w, "/api/v1/exchange/ticker", nil)
	if tk.LastMsat != 1_050_000 || tk.AITBCPerBTC != 95_238 || tk.Volume24h != 10*aitbc {
		t.Fatalf("ticker %+v", tk)
	}
}

// TestPartialFillRestsAndLaterFills: a sell larger than the buy is filled
// in part, rests with the rest held, and fills in a later block.
func TestPartialFillRestsAndLaterFills(t *testing.T) {
	w := newWorld(t, nil)
	w.fund(alice, 100*aitbc, 0)
	w.fund(bob, 0, 100_000)
	w.fund(carol, 0, 100_000)
	sell := w.mustPlace(alice, exchange.Sell, false, ref, 30*aitbc)
	w.mustPlace(bob, exchange.Buy, false, ref, 10*aitbc)
	w.endBlock()
	ov := mustQuery[exchange.OrdersView](t, w, "/api/v1/exchange/orders/"+alice.String(), map[string]string{"address": alice.String()})
	if len(ov.Orders) != 1 || ov.Orders[0].ID != sell || ov.Orders[0].Filled != 10*aitbc {
		t.Fatalf("alice's orders %+v", ov.Orders)
	}
	book := mustQuery[exchange.BookView](t, w, "/api/v1/exchange/book", nil)
	if len(book.Asks) != 1 || book.Asks[0].Amount != 20*aitbc || len(book.Bids) != 0 {
		t.Fatalf("book %+v", book)
	}
	w.mustPlace(carol, exchange.Buy, false, ref*2, 20*aitbc)
	w.endBlock()
	// The resting sell at ref and carol's buy at 2 × ref: the midpoint.
	if got := w.bal(alice, "btc"); got != 10_000+20*1500 {
		t.Fatalf("alice btc %d", got)
	}
	if got := w.bal(alice, "aitbc"); got != 70*aitbc-30_000 {
		t.Fatalf("alice aitbc %d", got)
	}
}

// TestMarketOrderFillsWithinItsWorstPriceAndRefundsTheRest: a market buy
// takes the resting asks up to its worst price; what is left is refunded
// at the end of the block.
func TestMarketOrderFillsWithinItsWorstPriceAndRefundsTheRest(t *testing.T) {
	w := newWorld(t, nil)
	w.fund(alice, 1000*aitbc, 0)
	w.fund(bob, 0, 1_000_000)
	w.mustPlace(alice, exchange.Sell, false, ref, 5*aitbc)
	w.mustPlace(alice, exchange.Sell, false, ref*2, 5*aitbc)
	w.endBlock()
	m := w.mustPlace(bob, exchange.Buy, true, ref*3/2, 8*aitbc) // worst 1.5 × ref: only the first ask
	w.endBlock()
	if got := w.bal(bob, "aitbc"); got != 5*aitbc-5000 {
		t.Fatalf("bob got %d AITBC, want 5 less the fee", got)
	}
	// Cleared at the midpoint of 1.5 × ref and ref: 1.25 × ref; 5 AITBC = 6,250 sat.
	if got := w.bal(bob, "btc"); got != 1_000_000-6_250 {
		t.Fatalf("bob btc %d", got)
	}
	if _, err := w.exec(bob, exchange.NewCancelMsg(m)); !errors.Is(err, exchange.ErrOrderNotFound) {
		t.Fatalf("market order still open: %v", err)
	}
	// A market order with nothing to meet is refunded whole.
	w.mustPlace(bob, exchange.Buy, true, ref, 1*aitbc)
	w.endBlock()
	if got := w.bal(bob, "btc"); got != 1_000_000-6_250 {
		t.Fatalf("bob btc %d after an unfilled market order", got)
	}
}

// TestBadOrdersAreRefusedWithTheirCodes: each bad order or cancel gets
// its own error and changes nothing.
func TestBadOrdersAreRefusedWithTheirCodes(t *testing.T) {
	p := exchange.DefaultParams()
	p.MaxOpenPerAccount = 2
	p.MaxOrdersPerBlock = 3
	w := newWorld(t, &p)
	w.fund(alice, 100*aitbc, 1_000_000)
	w.fund(bob, 100*aitbc, 1_000_000)
	w.fund(carol, 0, 100_000)
	ask := w.mustPlace(alice, exchange.Sell, false, ref*2, 2*aitbc)
	for name, c := range map[string]struct {
		who  address.Address
		msg  tx.Msg
		want error
	}{
		"zero price":        {bob, exchange.NewPlaceMsg(exchange.Buy, false, 0, aitbc, 0), exchange.ErrPrice},
		"zero amount":       {bob, exchange.NewPlaceMsg(exchange.Buy, false, ref, 0, 0), exchange.ErrAmount},
		"price too high":    {bob, exchange.NewPlaceMsg(exchange.Buy, false, p.MaxPrice+1, aitbc, 0), exchange.ErrPrice},
		"not a lot":         {bob, exchange.NewPlaceMsg(exchange.Buy, false, ref, aitbc+1, 0), exchange.ErrAmount},
		"below minimum":     {bob, exchange.NewPlaceMsg(exchange.Buy, false, ref, p.LotSize, 0), exchange.ErrBelowMinimum},
		"beyond btc":        {bob, exchange.NewPlaceMsg(exchange.Buy, false, ref, 2000*aitbc, 0), exchange.ErrBeyondBalance},
		"beyond aitbc":      {bob, exchange.NewPlaceMsg(exchange.Sell, false, ref*3, 100*aitbc, 0), exchange.ErrBeyondBalance},
		"bad side":          {bob, exchange.NewPlaceMsg(7, false, ref, aitbc, 0), exchange.ErrSide},
		"expiry too far":    {bob, exchange.NewPlaceMsg(exchange.Buy, false, ref, aitbc, w.h+p.MaxLifetime+1), exchange.ErrExpiry},
		"others' order":     {bob, exchange.NewCancelMsg(ask), exchange.ErrNotOwner},
		"no such order":     {bob, exchange.NewCancelMsg(999), exchange.ErrOrderNotFound},
		"self trade":        {alice, exchange.NewPlaceMsg(exchange.Buy, false, ref*2, aitbc, 0), exchange.ErrSelfTrade},
		"self trade market": {alice, exchange.NewPlaceMsg(exchange.Buy, true, ref*3, aitbc, 0), exchange.ErrSelfTrade},
	} {
		if c.want == nil {
			continue
		}
		if _, err := w.exec(c.who, c.msg); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	w.mustPlace(alice, exchange.Sell, false, ref*3, aitbc)
	if _, err := w.place(alice, exchange.Sell, false, ref*4, aitbc); !errors.Is(err, exchange.ErrTooManyOpen) {
		t.Fatalf("third open order: %v", err)
	}
	w.mustPlace(bob, exchange.Buy, false, ref/2, aitbc) // the block's third order
	if _, err := w.place(carol, exchange.Buy, false, ref/2, aitbc); !errors.Is(err, exchange.ErrBlockFull) {
		t.Fatalf("fourth order in a block of 3: %v", err)
	}
	w.endBlock()
	w.mustPlace(carol, exchange.Buy, false, ref/2, aitbc) // a new block takes orders again
}

// TestOrdersExpireAtTheirHeight: an order trades up to its expiry height
// and is refunded at its end.
func TestOrdersExpireAtTheirHeight(t *testing.T) {
	w := newWorld(t, nil)
	w.fund(alice, 10*aitbc, 0)
	if _, err := w.exec(alice, exchange.NewPlaceMsg(exchange.Sell, false, ref, 2*aitbc, w.h+1)); err != nil {
		t.Fatal(err)
	}
	w.endBlock()
	if got := w.bal(alice, "aitbc"); got == 10*aitbc {
		t.Fatal("nothing held while the order is open")
	}
	w.endBlock() // its last height
	if got := w.bal(alice, "aitbc"); got != 10*aitbc {
		t.Fatalf("alice %d after expiry, want all back", got)
	}
}

// TestExportImportKeepsTheBook: a book exported and imported with the
// bank's balances holds the invariants and clears as before.
func TestExportImportKeepsTheBook(t *testing.T) {
	w := newWorld(t, nil)
	w.fund(alice, 100*aitbc, 0)
	w.fund(bob, 0, 100_000)
	w.mustPlace(alice, exchange.Sell, false, ref, 20*aitbc)
	w.mustPlace(bob, exchange.Buy, false, ref, 5*aitbc)
	w.endBlock()
	rawB, err := w.bank.ExportGenesis(w.kv)
	if err != nil {
		t.Fatal(err)
	}
	rawX, err := w.k.ExportGenesis(w.kv)
	if err != nil {
		t.Fatal(err)
	}
	w2 := newWorld(t, nil)
	w2.kv = state.NewCache(w2.kv)
	if err := w2.bank.ImportGenesis(&module.Context{KV: w2.kv}, rawB); err != nil {
		t.Fatal(err)
	}
	if err := w2.k.ImportGenesis(&module.Context{KV: w2.kv}, rawX); err != nil {
		t.Fatal(err)
	}
	w2.h = w.h
	w2.audit()
	w2.mustPlace(bob, exchange.Buy, false, ref, 15*aitbc)
	w2.endBlock()
	if got := w2.bal(alice, "btc"); got != 20_000 {
		t.Fatalf("alice btc %d after the imported order filled", got)
	}
}

// TestRandomOrderSequencesConserveEachAsset: random places, cancels and
// blocks among four accounts; after every block each asset's total
// (accounts + the exchange's held funds + fees collected) is what was
// minted, and every invariant holds.
func TestRandomOrderSequencesConserveEachAsset(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		w := newWorld(t, nil)
		users := []address.Address{{1}, {2}, {3}, {4}}
		for _, u := range users {
			w.fund(u, 1000*aitbc, 10_000_000)
		}
		totalA, totalB := uint64(4000*aitbc), uint64(40_000_000)
		var ids []uint64
		for block := 0; block < 30; block++ {
			for i := r.IntN(12); i > 0; i-- {
				u := users[r.IntN(len(users))]
				if r.IntN(5) == 0 && len(ids) > 0 {
					_, _ = w.exec(u, exchange.NewCancelMsg(ids[r.IntN(len(ids))]))
					continue
				}
				side := exchange.Side(1 + r.IntN(2))
				price := ref/2 + r.Uint64N(ref)
				amount := (1 + r.Uint64N(50)) * aitbc / 2
				id, err := w.place(u, side, r.IntN(6) == 0, price, amount)
				if err == nil {
					ids = append(ids, id)
				}
			}
			w.endBlock()
			var a, b uint64
			for _, u := range append(users, w.k.Account(), w.bank.Collector()) {
				a += w.bal(u, "aitbc")
				b += w.bal(u, "btc")
			}
			if a != totalA || b != totalB {
				t.Fatalf("seed %d block %d: AITBC %d (want %d), btc %d (want %d)", seed, block, a, totalA, b, totalB)
			}
		}
		if tv := mustQuery[exchange.TradesView](t, w, "/api/v1/exchange/trades", nil); len(tv.Trades) == 0 {
			t.Fatalf("seed %d: no trades in 30 random blocks", seed)
		}
	}
}
