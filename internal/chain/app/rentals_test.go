package app_test

import (
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	mk "github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/rentals"
)

// TestGPULeaseThroughTheChain: a lease on a gpu-rental listing through the
// whole application (ante, fees, the market's listing, the miner registry,
// end-of-block charging), every block audited. Blocks are 1 s apart and
// 36 AITBC an hour is 10,000 base units a second, so a 10 s lease locks
// 100,000, pays the provider exactly that over the next ten blocks and
// closes in the tenth, when the listing's one place is free again.
func TestGPULeaseThroughTheChain(t *testing.T) {
	m := newMarket(t)
	m.register(minerA, coin.Unit/10, "llama2")
	fee := app.DefaultParams().MinFee
	m.mustOK(m.do(minerA, mk.NewCreateMsg(mk.ListingSpec{ID: "gpu-1", Name: "GPU Cloud Computing", Type: mk.TypeGPURental, Price: 36 * coin.Unit, Capacity: 1})))
	escrow := address.Module(rentals.EscrowAccount)
	cust, prov := m.balance(alice.addr), m.balance(minerA.addr)

	m.mustFail(m.do(alice, rentals.NewOpenMsg("gpu-1", 3600, 35*coin.Unit)), rentals.ErrEscrowShort)
	m.mustFail(m.do(minerA, rentals.NewOpenMsg("gpu-1", 60, 0)), rentals.ErrOwnService)
	if got := m.balance(alice.addr); got != cust {
		t.Fatalf("a refused lease cost the customer %s", cust-got)
	}
	m.mustOK(m.do(alice, rentals.NewOpenMsg("gpu-1", 10, 0)))
	if got, want := m.balance(alice.addr), cust-fee-100_000; got != want {
		t.Fatalf("customer after opening: %s, want %s", got, want)
	}
	m.mustFail(m.do(coord, rentals.NewOpenMsg("gpu-1", 10, 0)), rentals.ErrNoCapacity) // 1 s in
	for range 8 {
		m.block()
	}
	if got := m.balance(escrow); got != 10_000 {
		t.Fatalf("escrow %s after 9 of 10 s, want 10,000: the lease is drawn per block", got)
	}
	m.block() // the tenth second: paid up, closed
	if m.balance(escrow) != 0 || m.balance(minerA.addr) != prov+100_000 || m.balance(alice.addr) != cust-fee-100_000 {
		t.Fatalf("escrow %s, provider +%s, customer -%s", m.balance(escrow), m.balance(minerA.addr)-prov, cust-m.balance(alice.addr))
	}
	m.mustOK(m.do(coord, rentals.NewOpenMsg("gpu-1", 10, 0))) // the place is free
}
