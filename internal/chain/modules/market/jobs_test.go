package market_test

import (
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
)

// TestJobsUnderAgreement: seed 000's phase 3 on chain — a customer's jobs
// run under its agreement with a provider that mines; each settled job
// pays the provider from the agreement, the customer rates each job once,
// foreign jobs and jobs over the agreement's count are refused, and a
// reverse-auction order picks the cheapest auto-accepting listing.
func TestJobsUnderAgreement(t *testing.T) {
	prov, cust, coord, stranger := newAcct("provider", 1), newAcct("customer", 2), newAcct("coordinator", 3), newAcct("stranger", 4)
	c := newChain(t, nil, 1000*coin.Unit, prov, cust, coord, stranger)
	p := market.DefaultParams()
	c.miner(prov, "llama2", coin.Unit/10)

	spec := listing("svc-gpu", 3*coin.Unit)
	spec.Params = nil
	spec.AutoAccept = true
	c.must(prov, market.NewCreateMsg(spec))
	if s := c.service("svc-gpu"); s.GPU != "NVIDIA RTX 4090" || s.GPUMemoryMB != 24576 || s.Model != "llama2" {
		t.Fatalf("listing did not take the miner's hardware: %+v", s.ServiceView)
	}
	// An order above the listing's price becomes an agreement at once.
	c.must(cust, market.NewOrderMsg(market.MsgOrder{Type: market.TypeAIInference, Model: "llama2", MaxPrice: 4 * coin.Unit, Units: 2}))
	ags := c.service("svc-gpu")
	if ags.Live != 1 {
		t.Fatalf("order made no agreement: %+v", ags.ServiceView)
	}
	v, err := c.query("/api/v1/market/agreements", req{query: map[string]string{"service": "svc-gpu"}})
	if err != nil {
		t.Fatal(err)
	}
	al := v.(market.AgreementList).Agreements
	if len(al) != 1 || al[0].Locked != 6*coin.Unit || al[0].Price != 3*coin.Unit {
		t.Fatalf("agreements: %+v", al)
	}
	agr := al[0].ID

	j1 := c.createJob(cust, coord, 1, coin.Unit, "llama2")
	j2 := c.createJob(cust, coord, 2, coin.Unit, "llama2")
	j3 := c.createJob(cust, coord, 3, coin.Unit, "llama2")
	js := c.createJob(stranger, coord, 4, coin.Unit, "llama2")
	if err := c.do(stranger, market.NewBindMsg(agr, js)); !errors.Is(err, market.ErrNotBindable) {
		t.Fatalf("binding a stranger's job: %v", err)
	}
	c.must(cust, market.NewBindMsg(agr, j1))
	if err := c.do(cust, market.NewBindMsg(agr, j1)); !errors.Is(err, market.ErrNotBindable) {
		t.Fatalf("binding twice: %v", err)
	}
	c.must(coord, market.NewBindMsg(agr, j2))
	if err := c.do(cust, market.NewBindMsg(agr, j3)); !errors.Is(err, market.ErrNotBindable) {
		t.Fatalf("a third job under a 2-job agreement: %v", err)
	}
	// Rating before the job settled is refused.
	if err := c.do(cust, market.NewRateMsg(j1, 5, "fast")); !errors.Is(err, market.ErrNotRateable) {
		t.Fatalf("rating an unsettled job: %v", err)
	}
	provBefore := c.balance(prov.addr)
	c.settleJob(j1, cust, coord, prov, "llama2", 400, coin.Unit/10)
	c.settleJob(j2, cust, coord, prov, "llama2", 400, coin.Unit/10)
	a := c.agreement(agr)
	if a.Delivered != 2 || a.Drawn != 6*coin.Unit || a.Status != "completed" {
		t.Fatalf("agreement after two deliveries: %+v", a)
	}
	c.advance(p.DisputeWindow + 1)
	share, _ := p.Split(3 * coin.Unit)
	got := c.balance(prov.addr) - provBefore
	if got != 2*share { // paid once: by the agreement, nothing from the jobs' escrow
		t.Fatalf("provider got %s, want %s from the agreement", got, 2*share)
	}
	if e := c.balance(escrow); e != 0 {
		t.Fatalf("escrow: %s", e)
	}
	c.must(cust, market.NewRateMsg(j1, 5, "fast"))
	if err := c.do(cust, market.NewRateMsg(j1, 4, "again")); !errors.Is(err, market.ErrAlreadyRated) {
		t.Fatalf("rating twice: %v", err)
	}
	c.must(coord, market.NewRateForMsg(j2, 3, "ok", cust.addr))
	pv := c.provider(prov.addr)
	if pv.Facts.Delivered != 2 || pv.Facts.Ratings != 2 || pv.Facts.AvgRating != 4 || pv.Miner == nil {
		t.Fatalf("provider: %+v", pv)
	}
	if pv.Reputation.Uptime != 0 && pv.Reputation.Uptime != 1000 {
		t.Fatalf("uptime part for a miner: %+v", pv.Reputation)
	}
}
