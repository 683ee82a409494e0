package market_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
)

// TestProviderMinerNeedsBothConsents: a provider that runs no miner of its
// own names a miner (market/add_miner) and the miner names the provider
// (miners/set_provider); only with both may the provider's bound job run
// there. The job is paid once, by the agreement: the miner gets nothing
// from the job's escrow, the customer gets its escrow back less the
// coordinator's commission, and the provider is paid the agreement's
// price less the protocol fee — every balance to the unit. Either side
// ends the relation alone.
func TestProviderMinerNeedsBothConsents(t *testing.T) {
	prov, cust, coord := newAcct("provider", 1), newAcct("customer", 2), newAcct("coordinator", 3)
	hosted, stranger := newAcct("hosted miner", 5), newAcct("stranger miner", 6)
	c := newChain(t, nil, 1000*coin.Unit, prov, cust, coord, hosted, stranger)
	p := market.DefaultParams()
	jp := jobs.DefaultParams()
	c.miner(hosted, "llama2", coin.Unit/10)
	c.miner(stranger, "llama2", coin.Unit/10)

	spec := listing("svc-img", 120*coin.Unit)
	spec.Params, spec.Model = nil, "llama2"
	c.must(prov, market.NewCreateMsg(spec))
	c.must(cust, market.NewBidMsg("svc-img", 120*coin.Unit, 1, false))
	bid := c.bids("svc-img")[0].ID
	c.must(prov, market.NewAcceptMsg(bid))
	if s := c.service("svc-img"); len(s.Serving) != 0 {
		t.Fatalf("a provider without a miner has serving miners: %v", s.Serving)
	}

	j1 := c.createJob(cust, coord, 1, 10*coin.Unit, "llama2")
	c.must(cust, market.NewBindMsg(bid, j1))
	assign := func(m *acct) error { return c.do(coord, jobs.NewAssignMsg(j1, m.addr)) }
	if err := assign(hosted); !errors.Is(err, jobs.ErrMinerIneligible) {
		t.Fatalf("assigning to a miner of nobody: %v", err)
	}
	// The provider alone names it: not enough.
	c.must(prov, market.NewAddMinerMsg(hosted.addr))
	if err := assign(hosted); !errors.Is(err, jobs.ErrMinerIneligible) {
		t.Fatalf("assigning to a miner that did not consent: %v", err)
	}
	// A miner naming the provider alone: not enough either.
	c.must(stranger, miners.NewSetProviderMsg(&prov.addr))
	if err := assign(stranger); !errors.Is(err, jobs.ErrMinerIneligible) {
		t.Fatalf("assigning to a miner the provider did not name: %v", err)
	}
	c.must(hosted, miners.NewSetProviderMsg(&prov.addr))

	// Bad input: a specific error, nothing changes.
	before := c.fingerprint()
	for _, bad := range []struct {
		who  *acct
		msg  func() error
		want error
	}{
		{prov, func() error { return c.do(prov, market.NewAddMinerMsg(prov.addr)) }, market.ErrMinerLink},
		{prov, func() error { return c.do(prov, market.NewAddMinerMsg(hosted.addr)) }, market.ErrMinerLink},
		{prov, func() error { return c.do(prov, market.NewRemoveMinerMsg(stranger.addr)) }, market.ErrMinerLink},
		{cust, func() error { return c.do(cust, miners.NewSetProviderMsg(&prov.addr)) }, miners.ErrNotRegistered},
		{hosted, func() error { return c.do(hosted, miners.NewSetProviderMsg(&hosted.addr)) }, miners.ErrProvider},
	} {
		if err := bad.msg(); !errors.Is(err, bad.want) {
			t.Fatalf("%s: %v, want %v", bad.who.name, err, bad.want)
		}
	}
	if c.fingerprint() != before {
		t.Fatal("a refused message changed state")
	}

	pv := c.provider(prov.addr)
	if len(pv.Miners) != 1 || pv.Miners[0].Miner != hosted.addr || !pv.Miners[0].Consented || !pv.Miners[0].Active ||
		!slices.Equal(pv.Serving, []address.Address{hosted.addr}) {
		t.Fatalf("provider's miners: %+v serving %v", pv.Miners, pv.Serving)
	}
	if s := c.service("svc-img"); !slices.Equal(s.Serving, []address.Address{hosted.addr}) {
		t.Fatalf("service's serving miners: %v", s.Serving)
	}

	custBefore, provBefore, minerBefore, coordBefore := c.balance(cust.addr), c.balance(prov.addr), c.balance(hosted.addr), c.balance(coord.addr)
	c.settleJob(j1, cust, coord, hosted, "llama2", 400, coin.Unit/10)
	a := c.agreement(bid)
	if a.Delivered != 1 || a.Drawn != 120*coin.Unit || a.Status != "completed" {
		t.Fatalf("agreement after the delivery: %+v", a)
	}
	c.advance(p.DisputeWindow + 1)
	share, _ := p.Split(120 * coin.Unit)
	comm := jp.Commission(0) // routing only: the job's price counts as zero
	if got := c.balance(cust.addr); got != custBefore+10*coin.Unit-comm {
		t.Fatalf("customer: %s, want %s (escrow back less the commission %s)", got, custBefore+10*coin.Unit-comm, comm)
	}
	if got := c.balance(hosted.addr); got != minerBefore {
		t.Fatalf("hosted miner: %s, want %s (the agreement pays the provider, not the miner)", got, minerBefore)
	}
	if got := c.balance(prov.addr); got != provBefore+share {
		t.Fatalf("provider: %s, want %s", got, provBefore+share)
	}
	if got := c.balance(coord.addr); got != coordBefore+comm-2*c.fee {
		t.Fatalf("coordinator: %s, want %s", got, coordBefore+comm-2*c.fee)
	}
	for _, acc := range []string{market.EscrowAccount, jobs.EscrowAccount} {
		if b := c.balance(address.Module(acc)); b != 0 {
			t.Fatalf("%s holds %s", acc, b)
		}
	}

	// Either side ends it: the miner withdraws its consent, and the
	// provider's next job cannot run there.
	c.must(cust, market.NewBidMsg("svc-img", 120*coin.Unit, 1, false))
	bid2 := c.bids("svc-img")[1].ID
	c.must(prov, market.NewAcceptMsg(bid2))
	j2 := c.createJob(cust, coord, 2, 10*coin.Unit, "llama2")
	c.must(cust, market.NewBindMsg(bid2, j2))
	c.must(hosted, miners.NewSetProviderMsg(nil))
	if err := c.do(coord, jobs.NewAssignMsg(j2, hosted.addr)); !errors.Is(err, jobs.ErrMinerIneligible) {
		t.Fatalf("assigning after the miner withdrew: %v", err)
	}
	c.must(hosted, miners.NewSetProviderMsg(&prov.addr))
	c.must(prov, market.NewRemoveMinerMsg(hosted.addr))
	if err := c.do(coord, jobs.NewAssignMsg(j2, hosted.addr)); !errors.Is(err, jobs.ErrMinerIneligible) {
		t.Fatalf("assigning after the provider removed it: %v", err)
	}
	// A job already running on a miner of nobody cannot be bound to the
	// agreement afterwards (the agreement would pay for that miner's work).
	j3 := c.createJob(cust, coord, 3, 10*coin.Unit, "llama2")
	c.must(coord, jobs.NewAssignMsg(j3, stranger.addr))
	c.must(stranger, miners.NewSetProviderMsg(nil))
	c.must(cust, market.NewBidMsg("svc-img", 120*coin.Unit, 1, false))
	bid3 := c.bids("svc-img")[2].ID
	c.must(prov, market.NewAcceptMsg(bid3))
	if err := c.do(cust, market.NewBindMsg(bid3, j3)); !errors.Is(err, market.ErrNotBindable) {
		t.Fatalf("binding a job running on a stranger's miner: %v", err)
	}
}

// TestListingForATenantIsPaidFromItsDeposit: a coordinator that lists a
// service for its tenant (market/create_for, POST /v1/services/register)
// is paid the listing fee from the tenant's deposit with it — what the
// tenant would pay to list through the CLI — so the coordinator is not out
// of pocket; without the deposit the listing is refused and nothing
// changes.
func TestListingForATenantIsPaidFromItsDeposit(t *testing.T) {
	prov, coord := newAcct("provider", 1), newAcct("coordinator", 3)
	c := newChain(t, nil, 1000*coin.Unit, prov, coord)
	spec := listing("svc-api", 5*coin.Unit)
	c.block(nil) // the first block's own writes, before the fingerprint
	before := c.fingerprint()
	if err := c.do(coord, market.NewCreateForMsg(spec, prov.addr)); !errors.Is(err, jobs.ErrDepositLow) {
		t.Fatalf("listing for a tenant without a deposit: %v", err)
	}
	if c.fingerprint() != before {
		t.Fatal("a refused listing changed state")
	}
	c.must(prov, jobs.NewDepositMsg(coord.addr, coin.Unit))
	coordBefore, provBefore := c.balance(coord.addr), c.balance(prov.addr)
	c.must(coord, market.NewCreateForMsg(spec, prov.addr))
	if s := c.service("svc-api"); s.Provider != prov.addr {
		t.Fatalf("listing: %+v", s.ServiceView)
	}
	if got := c.balance(coord.addr); got != coordBefore-c.fee+market.ListingFee {
		t.Fatalf("coordinator: %s, want %s (its fee paid back)", got, coordBefore-c.fee+market.ListingFee)
	}
	if got := c.balance(prov.addr); got != provBefore {
		t.Fatalf("provider's balance moved: %s, want %s", got, provBefore)
	}
	var dep jobs.Deposit
	_ = c.app.Committed(func(q module.Query) error {
		var err error
		for _, m := range c.app.Modules() {
			if k, ok := m.(*jobs.Keeper); ok {
				dep, err = k.Deposit(q.State, prov.addr, coord.addr)
			}
		}
		return err
	})
	if dep.Amount != coin.Unit-market.ListingFee {
		t.Fatalf("deposit: %s, want %s", dep.Amount, coin.Unit-market.ListingFee)
	}
}
