package rentals_test

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/modules/rentals"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

func addr(i byte) address.Address {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = i
	return address.FromPubKey(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

type fakeListings map[string]*market.Listing

func (f fakeListings) Listing(_ state.Reader, id string) (*market.Listing, error) {
	l, ok := f[id]
	if !ok {
		return nil, nil
	}
	c := *l
	return &c, nil
}

type fakeMiners map[address.Address]*miners.Miner

func (f fakeMiners) Get(_ state.Reader, a address.Address) (*miners.Miner, error) { return f[a], nil }

// world is the module on an in-memory state with the real bank. Blocks are
// 2 s apart; every block's end is audited.
type world struct {
	t        *testing.T
	kv       *state.Cache
	bank     *bank.Keeper
	k        *rentals.Keeper
	listings fakeListings
	miners   fakeMiners
	h        int64
	now      time.Time
}

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// price is 3.6 AITBC an hour: exactly one base unit per millisecond, so
// every figure below can be checked by hand.
const price = 3_600_000

func newWorld(t *testing.T, prov address.Address, capacity uint32, fund map[address.Address]coin.Amount) *world {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := bank.NewKeeper()
	nobody := addr(99)
	ls := fakeListings{
		"gpu-1": {ID: "gpu-1", Provider: prov[:], Type: market.TypeGPURental, Unit: market.UnitHour, Price: price, Capacity: capacity, Status: market.ListingActive},
		"infer": {ID: "infer", Provider: prov[:], Type: market.TypeAIInference, Unit: market.UnitJob, Price: price, Status: market.ListingActive},
		"idle":  {ID: "idle", Provider: nobody[:], Type: market.TypeGPURental, Unit: market.UnitHour, Price: price, Status: market.ListingActive},
	}
	ms := fakeMiners{prov: {Address: prov[:], Status: miners.StatusActive, Caps: miners.Capabilities{GPU: "NVIDIA RTX 4090", GPUMemoryMB: 24564}}}
	k := rentals.NewKeeper(b, ls, ms)
	b.AddModuleAccounts(k.Accounts()...)
	w := &world{t: t, kv: state.NewCache(st), bank: b, k: k, listings: ls, miners: ms, h: 1, now: t0}
	if err := k.InitGenesis(w.ctx(address.Address{}, w.kv), nil); err != nil {
		t.Fatal(err)
	}
	for a, amt := range fund {
		if err := b.MintGenesis(w.kv, a, amt); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) ctx(signer address.Address, kv *state.Cache) *module.Context {
	return &module.Context{KV: kv, Height: w.h, Time: w.now, Signer: signer}
}

// exec runs msg as a transaction of the current block; a refused one must
// have written nothing.
func (w *world) exec(signer address.Address, msg tx.Msg) error {
	kv := w.kv.Child()
	err := w.k.Exec(w.ctx(signer, kv), msg)
	if err == nil {
		kv.Write()
	} else if kv.Len() != 0 {
		w.t.Errorf("%s refused (%v) but wrote %d keys", msg.Type, err, kv.Len())
	}
	return err
}

func (w *world) must(signer address.Address, msg tx.Msg) {
	w.t.Helper()
	if err := w.exec(signer, msg); err != nil {
		w.t.Fatalf("%s: %v", msg.Type, err)
	}
}

// endBlock ends the current block and starts the next, 2 s later.
func (w *world) endBlock() {
	w.t.Helper()
	if err := w.k.EndBlock(w.ctx(address.Address{}, w.kv)); err != nil {
		w.t.Fatal(err)
	}
	q := module.Query{State: w.kv, Height: w.h, Time: w.now}
	for _, inv := range w.k.Invariants() {
		if f := inv.Check(q); f.Broken {
			w.t.Fatalf("height %d: %s broken: %s", w.h, inv.Name, f.Detail)
		}
	}
	w.h++
	w.now = w.now.Add(2 * time.Second)
}

func (w *world) bal(a address.Address) coin.Amount {
	w.t.Helper()
	b, err := w.bank.Balance(w.kv, a)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// lastLease is the id of c's newest lease.
func (w *world) lastLease(c address.Address) string {
	w.t.Helper()
	l, err := w.k.Routes()[1].Handle(module.Query{State: w.kv, Height: w.h, Time: w.now}, listReq{"customer": c.String()})
	if err != nil {
		w.t.Fatal(err)
	}
	return l.(rentals.List).Leases[0].ID
}

type listReq map[string]string

func (r listReq) PathValue(string) string { return "" }
func (r listReq) Param(n string) string   { return r[n] }

func (w *world) lease(id string) *rentals.Lease {
	w.t.Helper()
	l, err := w.k.Get(w.kv, id)
	if err != nil || l == nil {
		w.t.Fatalf("lease %s: %v", id, err)
	}
	return l
}

// TestLeaseIsDrawnPerBlockAndClosesWhenItsMoneyRunsOut: 20 s at one unit
// per millisecond locks 20,000; each 2 s block pays the provider 2,000;
// the block whose time reaches the paid-up end closes it with nothing left
// to refund, and the listing's one place is free for the next renter in
// that same block's aftermath (the next block).
func TestLeaseIsDrawnPerBlockAndClosesWhenItsMoneyRunsOut(t *testing.T) {
	prov, cust, other := addr(1), addr(2), addr(3)
	w := newWorld(t, prov, 1, map[address.Address]coin.Amount{cust: 1_000_000, other: 1_000_000})
	escrow := address.Module(rentals.EscrowAccount)

	w.must(cust, rentals.NewOpenMsg("gpu-1", 20, 0))
	if got := w.bal(cust); got != 1_000_000-20_000 {
		t.Fatalf("customer after opening: %d", got)
	}
	l := w.lease("rent-1")
	if l.Locked != 20_000 || l.GPU != "NVIDIA RTX 4090" || l.GPUMemoryMB != 24564 || l.Status != rentals.StatusActive {
		t.Fatalf("lease: %+v", l)
	}
	// The one place is taken: another customer is refused, and pays nothing.
	if err := w.exec(other, rentals.NewOpenMsg("gpu-1", 20, 0)); !errors.Is(err, rentals.ErrNoCapacity) {
		t.Fatalf("second lease on a full listing: %v", err)
	}
	for i := 0; i < 10; i++ { // block times t0 .. t0+18 s: 0, 2,000, ... 18,000 drawn
		w.endBlock()
		if got, want := w.bal(prov), coin.Amount(i)*2_000; got != want {
			t.Fatalf("block %d: provider has %d, want %d", i, got, want)
		}
		if w.lease("rent-1").Status != rentals.StatusActive {
			t.Fatalf("block %d: closed early", i)
		}
	}
	w.endBlock() // t0+20 s: the paid-up end
	l = w.lease("rent-1")
	if l.Status != rentals.StatusExpired || l.Drawn != 20_000 || l.Refunded != 0 || l.Closed != 11 {
		t.Fatalf("after its end: %+v", l)
	}
	if w.bal(prov) != 20_000 || w.bal(cust) != 980_000 || w.bal(escrow) != 0 {
		t.Fatalf("provider %d customer %d escrow %d", w.bal(prov), w.bal(cust), w.bal(escrow))
	}
	if n, _ := w.k.Live(w.kv, "gpu-1"); n != 0 {
		t.Fatalf("listing still counts %d live leases", n)
	}
	// Capacity is free in the very next block.
	w.must(other, rentals.NewOpenMsg("gpu-1", 10, 0))
	w.endBlock()
	// Closed leases cannot be extended or ended again.
	if err := w.exec(cust, rentals.NewExtendMsg("rent-1", 10, 0)); !errors.Is(err, rentals.ErrNotActive) {
		t.Fatalf("extend a closed lease: %v", err)
	}
}

// TestEndingALeaseEarlyRefundsTheUnusedPart: ended 7 s in (after three
// blocks charged 4 s), the provider has 7,000, the customer 13,000 back.
func TestEndingALeaseEarlyRefundsTheUnusedPart(t *testing.T) {
	prov, cust, stranger := addr(1), addr(2), addr(3)
	w := newWorld(t, prov, 0, map[address.Address]coin.Amount{cust: 100_000})
	w.must(cust, rentals.NewOpenMsg("gpu-1", 20, 0))
	w.endBlock()
	w.endBlock()
	w.endBlock() // t0+6 s now
	w.now = w.now.Add(time.Second)
	if err := w.exec(stranger, rentals.NewEndMsg("rent-1")); !errors.Is(err, rentals.ErrNotParty) {
		t.Fatalf("a stranger ends it: %v", err)
	}
	w.must(cust, rentals.NewEndMsg("rent-1"))
	l := w.lease("rent-1")
	if l.Status != rentals.StatusEnded || l.Drawn != 7_000 || l.Refunded != 13_000 || l.Reason != "ended by the customer" {
		t.Fatalf("%+v", l)
	}
	if w.bal(prov) != 7_000 || w.bal(cust) != 93_000 {
		t.Fatalf("provider %d customer %d", w.bal(prov), w.bal(cust))
	}
	w.endBlock()
	if w.bal(prov) != 7_000 {
		t.Fatalf("a closed lease was charged again: provider %d", w.bal(prov))
	}
}

// TestExtendingALeasePaysForTheAddedTimeOnly: 20 s + 30 s = 50,000 locked
// in all; ended by the provider at 10 s, 40,000 come back.
func TestExtendingALeasePaysForTheAddedTimeOnly(t *testing.T) {
	prov, cust := addr(1), addr(2)
	w := newWorld(t, prov, 0, map[address.Address]coin.Amount{cust: 100_000})
	w.must(cust, rentals.NewOpenMsg("gpu-1", 20, 0))
	w.endBlock()
	if err := w.exec(cust, rentals.NewExtendMsg("rent-1", 30, 29_999)); !errors.Is(err, rentals.ErrEscrowShort) {
		t.Fatalf("extension above its escrow: %v", err)
	}
	if err := w.exec(prov, rentals.NewExtendMsg("rent-1", 30, 0)); !errors.Is(err, rentals.ErrNotParty) {
		t.Fatalf("the provider extends: %v", err)
	}
	w.must(cust, rentals.NewExtendMsg("rent-1", 30, 30_000))
	if l := w.lease("rent-1"); l.Locked != 50_000 || l.EndMs != t0.UnixMilli()+50_000 {
		t.Fatalf("extended: %+v", l)
	}
	for range 4 {
		w.endBlock()
	} // now t0+10 s, charged to t0+8 s
	w.must(prov, rentals.NewEndMsg("rent-1"))
	if l := w.lease("rent-1"); l.Drawn != 10_000 || l.Refunded != 40_000 || l.Reason != "ended by the provider" {
		t.Fatalf("%+v", l)
	}
	if w.bal(cust) != 90_000 || w.bal(prov) != 10_000 {
		t.Fatalf("customer %d provider %d", w.bal(cust), w.bal(prov))
	}
}

// TestClosedListingEndsItsLeases: the provider closes the listing (or its
// miner leaves); the lease ends in that block, paid for the time used.
func TestClosedListingEndsItsLeases(t *testing.T) {
	prov, cust := addr(1), addr(2)
	w := newWorld(t, prov, 0, map[address.Address]coin.Amount{cust: 100_000})
	w.must(cust, rentals.NewOpenMsg("gpu-1", 60, 0))
	w.endBlock()
	w.endBlock()
	w.listings["gpu-1"].Status = market.ListingClosed
	w.endBlock() // t0+4 s
	if l := w.lease("rent-1"); l.Status != rentals.StatusEnded || l.Drawn != 4_000 || l.Refunded != 56_000 || l.Reason != "listing closed" {
		t.Fatalf("%+v", l)
	}
	// A lease whose provider's miner deregisters ends the same way.
	w.listings["gpu-1"].Status = market.ListingActive
	w.must(cust, rentals.NewOpenMsg("gpu-1", 60, 0))
	w.endBlock() // t0+6 s, opened at t0+6 s: nothing due yet
	w.miners[prov].Status = 2
	w.endBlock() // t0+8 s
	if l := w.lease("rent-2"); l.Status != rentals.StatusEnded || l.Drawn != 2_000 || l.Refunded != 58_000 || l.Reason != "provider's miner left" {
		t.Fatalf("%+v", l)
	}
}

// TestBadRentalsAreRefusedWithTheirCodeAndChangeNothing: each refusal has
// its own error and leaves balances and state as they were (exec checks
// that nothing was written).
func TestBadRentalsAreRefusedWithTheirCodeAndChangeNothing(t *testing.T) {
	prov, cust, poor := addr(1), addr(2), addr(3)
	w := newWorld(t, prov, 0, map[address.Address]coin.Amount{cust: 100_000, poor: 5_000})
	day := uint64(24 * 3600)
	for _, c := range []struct {
		name   string
		signer address.Address
		msg    tx.Msg
		want   error
	}{
		{"no such listing", cust, rentals.NewOpenMsg("nope", 60, 0), rentals.ErrServiceNotFound},
		{"an inference listing", cust, rentals.NewOpenMsg("infer", 60, 0), rentals.ErrNotRentable},
		{"own listing", prov, rentals.NewOpenMsg("gpu-1", 60, 0), rentals.ErrOwnService},
		{"provider runs no miner", cust, rentals.NewOpenMsg("idle", 60, 0), rentals.ErrNoMiner},
		{"shorter than a block", cust, rentals.NewOpenMsg("gpu-1", 1, 0), rentals.ErrDuration},
		{"longer than 30 days", cust, rentals.NewOpenMsg("gpu-1", 31*day, 0), rentals.ErrDuration},
		{"longer than the escrow covers", cust, rentals.NewOpenMsg("gpu-1", 60, 59_999), rentals.ErrEscrowShort},
		{"more than the balance", poor, rentals.NewOpenMsg("gpu-1", 60, 0), bank.ErrInsufficientFunds},
		{"empty service id", cust, rentals.NewOpenMsg("", 60, 0), rentals.ErrInvalidQuery},
		{"no such lease", cust, rentals.NewEndMsg("rent-9"), rentals.ErrNotFound},
		{"unknown message", cust, tx.Msg{Type: "rentals/steal"}, tx.ErrUnknownMsg},
	} {
		before := [3]coin.Amount{w.bal(cust), w.bal(poor), w.bal(prov)}
		err := w.exec(c.signer, c.msg)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if after := [3]coin.Amount{w.bal(cust), w.bal(poor), w.bal(prov)}; after != before {
			t.Errorf("%s: balances moved %v -> %v", c.name, before, after)
		}
		var e *errs.Error
		if errors.As(err, &e) && e.Codespace == "rentals" && e.Name == "" {
			t.Errorf("%s: unnamed error", c.name)
		}
	}
	w.endBlock()
}

// TestEscrowInvariantCatchesMissingMoney: money taken out of the escrow
// behind the module's back breaks rentals/escrow.
func TestEscrowInvariantCatchesMissingMoney(t *testing.T) {
	prov, cust, thief := addr(1), addr(2), addr(3)
	w := newWorld(t, prov, 0, map[address.Address]coin.Amount{cust: 100_000})
	w.must(cust, rentals.NewOpenMsg("gpu-1", 20, 0))
	if err := w.bank.Send(w.kv, address.Module(rentals.EscrowAccount), thief, 1); err != nil {
		t.Fatal(err)
	}
	q := module.Query{State: w.kv, Height: w.h, Time: w.now}
	if f := w.k.Invariants()[0].Check(q); !f.Broken {
		t.Fatalf("escrow invariant holds with 1 unit missing: %s", f.Detail)
	}
}

// TestLeasesSurviveExportAndImport: a running lease exported at one height
// is the same lease on the new chain, and keeps being charged there.
func TestLeasesSurviveExportAndImport(t *testing.T) {
	prov, cust := addr(1), addr(2)
	w := newWorld(t, prov, 0, map[address.Address]coin.Amount{cust: 100_000})
	w.must(cust, rentals.NewOpenMsg("gpu-1", 20, 0))
	w.endBlock()
	w.endBlock()
	raw, err := w.k.ExportGenesis(w.kv)
	if err != nil {
		t.Fatal(err)
	}
	w2 := newWorld(t, prov, 0, nil)
	if err := w2.k.ImportGenesis(w2.ctx(address.Address{}, w2.kv), raw); err != nil {
		t.Fatal(err)
	}
	// The bank's own export carries the balances; here the escrow's
	// balance is minted to match, as the bank's import would restore it.
	if err := w2.bank.MintGenesis(w2.kv, address.Module(rentals.EscrowAccount), w.bal(address.Module(rentals.EscrowAccount))); err != nil {
		t.Fatal(err)
	}
	if got, want := *w2.lease("rent-1"), *w.lease("rent-1"); got.Drawn != want.Drawn || got.Locked != want.Locked || got.EndMs != want.EndMs {
		t.Fatalf("imported %+v, exported %+v", got, want)
	}
	w2.now, w2.h = w.now, w.h
	w2.endBlock() // t0+4 s
	if l := w2.lease("rent-1"); l.Drawn != 4_000 {
		t.Fatalf("charged on the new chain: %+v", l)
	}
	bad := []byte(`{"records":[{"k":"` + "Zm9vLw==" + `","v":"AQ=="}]}`) // key "foo/"
	if err := w2.k.ImportGenesis(w2.ctx(address.Address{}, w2.kv), bad); err == nil {
		t.Fatal("imported a record outside the module's prefix")
	}
}

// TestCostRoundsDownAndNeverOverflows: the price of a time, to the unit.
func TestCostRoundsDownAndNeverOverflows(t *testing.T) {
	for _, c := range []struct {
		price coin.Amount
		ms    int64
		want  coin.Amount
		ok    bool
	}{
		{50 * coin.Unit, 3_600_000, 50 * coin.Unit, true},
		{50 * coin.Unit, 1_000, 13_888, true}, // 50e6 / 3600 = 13,888.9
		{1, 3_599_999, 0, true},
		{coin.Amount(^uint64(0)), 3_600_000, coin.Amount(^uint64(0)), true},
		{coin.Amount(^uint64(0)), 3_600_001, 0, false},
		{7, -5, 0, true},
	} {
		got, ok := rentals.Cost(c.price, c.ms)
		if got != c.want || ok != c.ok {
			t.Errorf("Cost(%d, %d) = %d, %v; want %d, %v", c.price, c.ms, got, ok, c.want, c.ok)
		}
	}
}
