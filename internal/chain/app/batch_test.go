package app_test

import (
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TestBatchCreatesAssignsAndSettlesManyJobs: a coordinator creates (from
// a deposit), assigns and settles jobs in three batches of one transaction
// each; a receipt with a bad signature is skipped (the log says so) and
// the others settle; batches that apply nothing or are malformed are
// refused and change nothing.
func TestBatchCreatesAssignsAndSettlesManyJobs(t *testing.T) {
	m := newMarket(t)
	m.register(minerA, coin.Unit, "tolstoy-1m")
	m.mustOK(m.do(alice, jobs.NewDepositMsg(coord.addr, 50*coin.Unit)))
	const n = 20
	var creates, assigns, settles []tx.Msg
	for i := range n {
		id := jobID(byte(100 + i))
		creates = append(creates, jobs.NewCreateForMsg(spec(id, coin.Unit, 600), alice.addr))
		assigns = append(assigns, jobs.NewAssignMsg(id, minerA.addr))
		r := receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit))
		if i == 7 {
			r.Sig[0] ^= 1 // a bad signature: this one must not settle
		}
		settles = append(settles, jobs.NewSettleMsg(r))
	}
	m.mustOK(m.do(coord, jobs.NewBatchMsg(creates)))
	m.mustOK(m.do(coord, jobs.NewBatchMsg(assigns)))
	minerBefore, coordBefore := m.balance(minerA.addr), m.balance(coord.addr)
	r := m.do(coord, jobs.NewBatchMsg(settles))
	m.mustOK(r)
	if !strings.Contains(r.Log, "19 of 20 items applied") || !strings.Contains(r.Log, "item 7") {
		t.Errorf("log %q does not say item 7 was skipped", r.Log)
	}
	for i := range n {
		j := m.job(jobID(byte(100 + i)))
		if settled := j.Status == jobs.StatusSettled; settled != (i != 7) {
			t.Errorf("job %d: status %s", i, jobs.StatusName(j.Status))
		}
	}
	p := jobs.DefaultParams()
	price := jobs.PriceFor(100, coin.Unit)
	if got, want := m.balance(minerA.addr), minerBefore+19*price; got != want {
		t.Errorf("miner has %s, want %s", got, want)
	}
	fee := app.DefaultParams().MinFee
	if got, want := m.balance(coord.addr), coordBefore+19*p.Commission(price)-fee; got != want {
		t.Errorf("coordinator has %s, want %s (19 commissions less one tx fee)", got, want)
	}
	m.checkSupply()

	// Refused: every item fails (the same receipts again), empty, nested,
	// a non-jobs message. Nothing changes, not even the nonce.
	before := m.balance(coord.addr)
	m.mustFail(m.do(coord, jobs.NewBatchMsg(settles[:3])), jobs.ErrJobState)
	m.mustFail(m.do(coord, jobs.NewBatchMsg(nil)), jobs.ErrBatch)
	m.mustFail(m.do(coord, jobs.NewBatchMsg([]tx.Msg{jobs.NewBatchMsg(assigns[:1])})), jobs.ErrBatch)
	m.mustFail(m.do(coord, jobs.NewBatchMsg([]tx.Msg{bank.NewSendMsg(alice.addr, 1)})), jobs.ErrBatch)
	if got := m.balance(coord.addr); got != before {
		t.Errorf("refused batches changed the coordinator's balance: %s → %s", before, got)
	}
	m.checkSupply()
}
