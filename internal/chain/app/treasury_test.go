package app_test

import (
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
	"github.com/aitbc/aitbc/internal/chain/modules/multisig"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/modules/treasury"
)

func (m *market) treasury() treasury.View {
	var v treasury.View
	_ = m.app.Committed(func(q module.Query) error {
		r, err := routeOf(keeper[*treasury.Keeper](m.harness), "/api/v1/treasury").Handle(q, params{})
		if err != nil {
			m.t.Fatal(err)
		}
		v = r.(treasury.View)
		return nil
	})
	return v
}

var treasuryAddr = address.Module(rewards.TreasuryAccount)

// TestTreasurySpendsOnlyThroughItsCouncil: genesis creates a 2-of-2
// multisig "council" and names it the treasury's admin. Nobody else can
// spend or take the council's name; a spend proposed by one councillor
// pays at the second signature, is logged and leaves the books balanced.
func TestTreasurySpendsOnlyThroughItsCouncil(t *testing.T) {
	council := multisig.Address("council")
	m := newEconomyWith(t, 5, map[string]any{
		"multisig": map[string]any{"expiry_blocks": 20, "accounts": []multisig.GenesisAccount{{Name: "council", Threshold: 2, Signers: []address.Address{staker1.addr, staker2.addr}}}},
		"treasury": treasury.Params{Admin: council.String()},
	})
	for range 12 { // the treasury fills from rewards
		m.block()
	}
	if v := m.treasury(); v.Balance == 0 || v.Admin != council.String() || v.Spent != 0 {
		t.Fatalf("treasury before: %+v", v)
	}
	m.mustFail(m.do(alice, multisig.NewCreateMsg("council", 1, []address.Address{alice.addr})), multisig.ErrExists)
	m.mustFail(m.do(alice, treasury.NewSpendMsg(alice.addr, coin.Unit, "mine")), treasury.ErrNotAdmin)
	m.mustOK(m.do(staker1, multisig.NewProposeMsg("council", treasury.NewSpendMsg(bob.addr, coin.Unit/2, "grant #1"))))
	if m.balance(bob.addr) != 0 {
		t.Fatal("paid before the threshold")
	}
	m.mustOK(m.do(staker2, multisig.NewSignMsg("council", 0)))
	if got := m.balance(bob.addr); got != coin.Unit/2 {
		t.Errorf("bob got %s, want 0.5", got)
	}
	v := m.treasury()
	if v.Spent != coin.Unit/2 || v.Count != 1 || len(v.Spends) != 1 || v.Spends[0].To != bob.addr || v.Spends[0].Memo != "grant #1" || v.Spends[0].Height != m.height {
		t.Errorf("treasury after: %+v", v)
	}
	m.audit()
}

// TestTreasurySpendBadInput: every refusal has its own error and changes
// nothing: the treasury's balance and spent total stay as they were.
func TestTreasurySpendBadInput(t *testing.T) {
	m := newEconomyWith(t, 5, map[string]any{"treasury": treasury.Params{Admin: alice.addr.String()}})
	for range 6 {
		m.block()
	}
	before := m.treasury()
	cases := []struct {
		name   string
		to     address.Address
		amount coin.Amount
		memo   string
		want   interface{ Error() string }
	}{
		{"zero amount", bob.addr, 0, "", treasury.ErrAmount},
		{"more than it holds", bob.addr, before.Balance + coin.Unit, "", rewards.ErrTreasuryFunds},
		{"to a module account", address.Module(faucet.Account), coin.Unit / 10, "", treasury.ErrRecipient},
		{"to the all-zero address", address.Address{}, coin.Unit / 10, "", treasury.ErrRecipient},
		{"memo too long", bob.addr, coin.Unit / 10, strings.Repeat("x", treasury.MaxMemo+1), treasury.ErrMemo},
	}
	for _, c := range cases {
		bal := m.balance(treasuryAddr)
		r := m.do(alice, treasury.NewSpendMsg(c.to, c.amount, c.memo))
		if r.Code == 0 || !strings.Contains(r.Log, c.want.Error()) {
			t.Errorf("%s: code %d %q, want %s", c.name, r.Code, r.Log, c.want)
		}
		// The block's reward still pays the treasury its share; nothing
		// was spent.
		if v := m.treasury(); v.Spent != 0 || v.Count != 0 || m.balance(treasuryAddr) < bal {
			t.Errorf("%s changed the treasury: %+v", c.name, v)
		}
	}
	m.mustOK(m.do(alice, treasury.NewSpendMsg(bob.addr, before.Balance, "all of it at the time")))
	m.audit()

	// A chain whose genesis names no admin cannot spend.
	n := newEconomy(t, 5)
	n.block()
	n.mustFail(n.do(alice, treasury.NewSpendMsg(bob.addr, 1, "")), treasury.ErrNoAdmin)
}
