package app_test

import (
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
)

// TestSplitSettlementPaysAroundAGoneServer: spanC served the route's
// layers 2-3 and deregistered before the coordinator settled. The
// settlement is not refused: A and the dropped B are paid exactly the
// shares they would have had, C's share goes back to the customer with
// the refund, C gets nothing, and the escrow is paid out to the unit.
func TestSplitSettlementPaysAroundAGoneServer(t *testing.T) {
	m := splitMarket(t)
	id := jobID(3)
	m.mustOK(m.create(id, 10*coin.Unit, 600))
	m.mustOK(m.do(spanC, agents.NewDeregisterMsg()))
	servers := []address.Address{minerA.addr, spanC.addr, minerB.addr}
	before := map[address.Address]coin.Amount{}
	for _, a := range servers {
		before[a] = m.balance(a)
	}
	aliceBefore := m.balance(alice.addr)
	set := settlement(id)
	m.mustOK(m.do(coord, jobs.NewSettleStagesMsg(set)))
	m.checkSupply()

	price := jobs.PriceFor(8, 2*coin.Unit) // 16,000 units, weights A 24, C 24, B 14
	wantC, wantB := price.MulDiv(24, 62), price.MulDiv(14, 62)
	wantA := price - wantC - wantB
	want := map[address.Address]coin.Amount{minerA.addr: wantA, spanC.addr: 0, minerB.addr: wantB}
	for _, a := range servers {
		if got := m.balance(a) - before[a]; got != want[a] {
			t.Errorf("server %s got %s, want %s", a, got, want[a])
		}
	}
	j := m.job(id)
	full := jobs.Split(jobs.DefaultParams(), j.Escrow, price)
	if j.Status != jobs.StatusSettled || j.Paid != wantA+wantB || j.Refund != full.Refund+wantC || j.Fee != full.Fee || j.Commission != full.Commission {
		t.Fatalf("job %s: paid %s refund %s fee %s commission %s; want paid %s, refund %s + C's %s", jobs.StatusName(j.Status), j.Paid, j.Refund, j.Fee, j.Commission, wantA+wantB, full.Refund, wantC)
	}
	if j.Paid+j.Fee+j.Commission+j.Refund != j.Escrow {
		t.Fatalf("paid %s + fee %s + commission %s + refund %s != escrow %s", j.Paid, j.Fee, j.Commission, j.Refund, j.Escrow)
	}
	if got := m.balance(alice.addr) - aliceBefore; got != j.Refund {
		t.Fatalf("the customer got %s back, the job refunds %s", got, j.Refund)
	}
}

// TestSplitSettlementNobodyOnChain: when no stage's server is registered
// any more, nothing vouches for the settlement: it is refused and no
// money moves (the escrow returns at the TTL).
func TestSplitSettlementNobodyOnChain(t *testing.T) {
	m := splitMarket(t)
	id := jobID(4)
	m.mustOK(m.create(id, 10*coin.Unit, 600))
	for _, k := range []key{minerA, minerB, spanC} {
		m.mustOK(m.do(k, agents.NewDeregisterMsg()))
	}
	watch := []address.Address{minerA.addr, minerB.addr, spanC.addr, alice.addr}
	before := map[address.Address]coin.Amount{}
	for _, a := range watch {
		before[a] = m.balance(a)
	}
	m.mustFail(m.do(coord, jobs.NewSettleStagesMsg(settlement(id))), jobs.ErrStageSpan)
	for _, a := range watch {
		if got := m.balance(a); got != before[a] {
			t.Errorf("%s: balance %s, was %s", a, got, before[a])
		}
	}
	if j := m.job(id); j.Status != jobs.StatusOpen {
		t.Fatalf("job is %s after a refused settlement", jobs.StatusName(j.Status))
	}
	m.checkSupply()
}

// TestSplitSettlementReregisteredElsewhere: a server still registered but
// now announcing other layers than its stage ran contradicts the
// settlement: refused as before, not paid around.
func TestSplitSettlementReregisteredElsewhere(t *testing.T) {
	m := splitMarket(t)
	id := jobID(5)
	m.mustOK(m.create(id, 10*coin.Unit, 600))
	m.mustOK(m.do(spanC, agents.NewRegisterSpansMsg("span", hashTolstoy, []string{"inference", "span"}, "http://127.0.0.1:8033",
		[]agents.Span{{Model: "tolstoy-1m", First: 0, Last: 1}})))
	m.mustFail(m.do(coord, jobs.NewSettleStagesMsg(settlement(id))), jobs.ErrStageSpan)
	if j := m.job(id); j.Status != jobs.StatusOpen {
		t.Fatalf("job is %s after a refused settlement", jobs.StatusName(j.Status))
	}
}
