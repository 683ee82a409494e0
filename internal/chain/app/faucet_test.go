package app_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
)

// TestFaucetPaysAtMostItsAllowancePerPeriod: an address with no balance
// asks and is paid (the faucet pays the fee); asking again within the
// period is refused with the time left; after the period it is paid
// again; more than the allowance is refused; nothing changes on a refusal.
func TestFaucetPaysAtMostItsAllowancePerPeriod(t *testing.T) {
	fp := faucet.DefaultParams()
	fp.Period = 10 // blocks are a second apart in the harness
	fb, _ := json.Marshal(fp)
	h := newHarnessWith(t, app.Genesis{Params: app.DefaultParams(), Modules: map[string]json.RawMessage{"faucet": fb}})
	m := &market{harness: h, nonces: map[address.Address]uint64{}}
	fa := address.Module(faucet.Account)
	fee := app.DefaultParams().MinFee
	m.mustOK(m.do(bob, faucet.NewDripMsg(bob.addr, 0))) // bob has nothing: the faucet pays the fee
	if got := m.balance(bob.addr); got != 1000*coin.Unit {
		t.Fatalf("bob has %s, want 1000", got)
	}
	if got := m.balance(fa); got != fp.Fund-1000*coin.Unit-fee {
		t.Fatalf("faucet has %s", got)
	}
	r := m.do(bob, faucet.NewDripMsg(bob.addr, coin.Unit))
	m.mustFail(r, faucet.ErrLimit)
	if !strings.Contains(r.Log, "0 AITBC of its 1000 left until") {
		t.Errorf("refusal %q does not say when", r.Log)
	}
	// Many addresses from one key are fine on chain; more than the
	// allowance is not.
	m.mustOK(m.do(bob, faucet.NewDripMsg(alice.addr, 400*coin.Unit)))
	m.mustOK(m.do(bob, faucet.NewDripMsg(alice.addr, 600*coin.Unit)))
	m.mustFail(m.do(bob, faucet.NewDripMsg(alice.addr, 1)), faucet.ErrLimit)
	m.mustFail(m.do(bob, faucet.NewDripMsg(minerA.addr, 1001*coin.Unit)), faucet.ErrAmount)
	if m.balance(minerA.addr) != 0 || m.balance(alice.addr) != 1000*coin.Unit {
		t.Fatal("a refused drip paid")
	}
	for range 10 {
		m.block()
	}
	m.mustOK(m.do(bob, faucet.NewDripMsg(bob.addr, 0)))
	if got := m.balance(bob.addr); got != 2000*coin.Unit {
		t.Fatalf("bob has %s after the period, want 2000", got)
	}
	m.checkAudit()
}

func TestFaucetDisabledByGenesis(t *testing.T) {
	h := newHarnessWith(t, app.Genesis{Params: app.DefaultParams(), Modules: map[string]json.RawMessage{"faucet": json.RawMessage(`{"enabled":false}`)}})
	m := &market{harness: h, nonces: map[address.Address]uint64{}}
	r := m.block(m.sign(bob, faucet.NewDripMsg(bob.addr, 0))).TxResults[0]
	if got := m.balance(address.Module(faucet.Account)); got != 0 {
		t.Fatalf("a disabled faucet holds %s", got)
	}
	wantCode(t, "disabled", r.Code, r.Codespace, faucet.ErrDisabled)
}

func (m *market) checkAudit() {
	m.t.Helper()
	m.audit()
}
