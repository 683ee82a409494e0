package app_test

import (
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/multisig"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

func (m *market) multisig(name string) multisig.View {
	var v multisig.View
	_ = m.app.Committed(func(q module.Query) error {
		r, err := routeOf(keeper[*multisig.Keeper](m.harness), "/api/v1/multisig/{name}").Handle(q, params{"name": name})
		v, _ = r.(multisig.View)
		return err
	})
	return v
}

// TestMultisigTwoOfThree: a 2-of-3 account is funded, a transfer is
// proposed and executes at the second signature; bad input is refused
// with its own error and changes nothing; any message type works (a
// stake); proposals expire.
func TestMultisigTwoOfThree(t *testing.T) {
	m := newEconomy(t, 1000)
	a, b, c := staker1, staker2, coord
	ms := multisig.Address("ops")
	// Bad accounts first: threshold 0, above n, duplicate signers, a bad name.
	for _, bad := range []tx.Msg{
		multisig.NewCreateMsg("ops", 0, []address.Address{a.addr, b.addr}),
		multisig.NewCreateMsg("ops", 3, []address.Address{a.addr, b.addr}),
		multisig.NewCreateMsg("ops", 2, []address.Address{a.addr, b.addr, a.addr}),
		multisig.NewCreateMsg("Ops!", 1, []address.Address{a.addr}),
	} {
		m.mustFail(m.do(alice, bad), multisig.ErrInvalid)
	}
	m.mustOK(m.do(alice, multisig.NewCreateMsg("ops", 2, []address.Address{a.addr, b.addr, c.addr})))
	m.mustFail(m.do(alice, multisig.NewCreateMsg("ops", 1, []address.Address{a.addr})), multisig.ErrExists)
	m.mustOK(m.do(alice, bank.NewSendMsg(ms, 50*coin.Unit)))

	// Proposal 0: 10 AITBC to minerA.
	pay := bank.NewSendMsg(minerA.addr, 10*coin.Unit)
	m.mustFail(m.do(alice, multisig.NewProposeMsg("ops", pay)), multisig.ErrNotSigner)
	m.mustFail(m.do(a, multisig.NewProposeMsg("nope", pay)), multisig.ErrNotFound)
	m.mustFail(m.do(a, multisig.NewProposeMsg("ops", multisig.NewSignMsg("ops", 0))), multisig.ErrBadProposal)
	r := m.do(a, multisig.NewProposeMsg("ops", pay))
	m.mustOK(r)
	if !strings.Contains(r.Log, "proposal 0") {
		t.Errorf("propose log %q does not name the proposal", r.Log)
	}
	before := m.balance(minerA.addr)
	m.mustFail(m.do(a, multisig.NewSignMsg("ops", 0)), multisig.ErrSigned)
	m.mustFail(m.do(alice, multisig.NewSignMsg("ops", 0)), multisig.ErrNotSigner)
	m.mustFail(m.do(b, multisig.NewSignMsg("ops", 7)), multisig.ErrNoProposal)
	if m.balance(minerA.addr) != before || m.balance(ms) != 50*coin.Unit {
		t.Fatal("money moved before the threshold")
	}
	r = m.do(b, multisig.NewSignMsg("ops", 0))
	m.mustOK(r)
	if got := m.balance(minerA.addr); got != before+10*coin.Unit {
		t.Errorf("minerA has %s after execution, want %s", got, before+10*coin.Unit)
	}
	if got := m.balance(ms); got != 40*coin.Unit {
		t.Errorf("the multisig has %s, want 40", got)
	}
	m.mustFail(m.do(c, multisig.NewSignMsg("ops", 0)), multisig.ErrExecuted)

	// Any message: the account stakes to a miner.
	m.register(minerA, coin.Unit, "tolstoy-1m")
	m.mustOK(m.do(c, multisig.NewProposeMsg("ops", staking.NewStakeMsg(minerA.addr, 5*coin.Unit))))
	m.mustOK(m.do(a, multisig.NewSignMsg("ops", 1)))
	if d := m.delegator(ms); d.Staked != 5*coin.Unit {
		t.Errorf("the multisig's stake: %+v", d)
	}
	// A message that fails at execution refuses the signature: nothing
	// changes, and the proposal stays open.
	m.mustOK(m.do(a, multisig.NewProposeMsg("ops", bank.NewSendMsg(alice.addr, 1000*coin.Unit))))
	r = m.do(b, multisig.NewSignMsg("ops", 2))
	if got := errs.Lookup(r.Codespace, r.Code); got == nil || !strings.Contains(r.Log, "multisig ops proposal 2") {
		t.Errorf("failing execution: %s/%d %q", r.Codespace, r.Code, r.Log)
	}
	v := m.multisig("ops")
	if v.Threshold != 2 || len(v.Signers) != 3 || v.Balance != 35*coin.Unit || len(v.Proposals) != 3 ||
		v.Proposals[0].Status != "executed" || v.Proposals[2].Status != "open" || len(v.Proposals[2].Approvals) != 1 {
		t.Fatalf("multisig view %+v", v)
	}
	// Expiry: after expiry_blocks (20 here) the proposal cannot be signed.
	for m.height <= v.Proposals[2].Expires {
		m.block()
	}
	m.mustFail(m.do(b, multisig.NewSignMsg("ops", 2)), multisig.ErrExpired)
	if v := m.multisig("ops"); v.Proposals[2].Status != "expired" {
		t.Errorf("proposal 2 is %s", v.Proposals[2].Status)
	}
}
