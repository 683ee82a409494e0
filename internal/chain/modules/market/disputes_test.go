package market_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
)

// operator reads op's staking record as GET /api/v1/staking/operators shows it.
func (c *chain) operator(op address.Address) staking.OperatorView {
	c.t.Helper()
	for _, m := range c.app.Modules() {
		k, ok := m.(*staking.Keeper)
		if !ok {
			continue
		}
		for _, rt := range k.Routes() {
			if rt.Path != "/api/v1/staking/operators" {
				continue
			}
			var out any
			if err := c.app.Committed(func(q module.Query) error {
				var err error
				out, err = rt.Handle(q, req{})
				return err
			}); err != nil {
				c.t.Fatal(err)
			}
			for _, o := range out.(staking.Operators).Operators {
				if o.Address == op {
					return o
				}
			}
			return staking.OperatorView{}
		}
	}
	c.t.Fatal("no staking module")
	return staking.OperatorView{}
}

// TestALostDisputeSlashesTheProvidersStake: while a customer's dispute is
// open, nobody can unstake from the provider; when the provider concedes,
// the customer has its payout back and dispute_slash_bps of the stake
// delegated to the provider is burned (the supply shrinks by it, the
// invariants hold after every block); a dispute the customer withdraws
// slashes nothing; afterwards unstaking works again.
func TestALostDisputeSlashesTheProvidersStake(t *testing.T) {
	prov, cust, staker := newAcct("provider", 1), newAcct("customer", 2), newAcct("staker", 3)
	c := newChain(t, nil, 5000*coin.Unit, prov, cust, staker)
	p := market.DefaultParams()
	c.miner(prov, "llama2", coin.Unit/10)
	c.must(staker, staking.NewStakeMsg(prov.addr, 1000*coin.Unit))
	c.must(prov, staking.NewStakeMsg(prov.addr, 200*coin.Unit))
	c.must(prov, market.NewCreateMsg(listing("svc-d", 10*coin.Unit)))
	c.must(cust, market.NewBidMsg("svc-d", 10*coin.Unit, 2, false))
	bid := c.bids("svc-d")[0].ID
	c.must(prov, market.NewAcceptMsg(bid))
	c.must(cust, market.NewSettleMsg(bid, 10*coin.Unit))
	c.must(cust, market.NewSettleMsg(bid, 10*coin.Unit))
	pos := c.payouts(bid)

	c.must(cust, market.NewDisputeMsg(pos[0].ID, "the model answered garbage"))
	if o := c.operator(prov.addr); o.Disputes != 1 || o.Bonded != 1200*coin.Unit {
		t.Fatalf("operator during the dispute: %+v", o)
	}
	if err := c.do(staker, staking.NewUnstakeMsg(prov.addr, 100*coin.Unit)); !errors.Is(err, staking.ErrInDispute) {
		t.Fatalf("unstaking during a dispute: %v", err)
	}
	if err := c.do(prov, staking.NewUnstakeMsg(prov.addr, 100*coin.Unit)); !errors.Is(err, staking.ErrInDispute) {
		t.Fatalf("the provider unstaking during a dispute: %v", err)
	}
	if o := c.operator(prov.addr); o.Bonded != 1200*coin.Unit {
		t.Fatalf("a refused unstake changed the stake: %+v", o)
	}

	custBefore, burnedBefore := c.balance(cust.addr), c.burned()
	c.must(prov, market.NewResolveMsg(pos[0].ID, true)) // the provider concedes: it lost
	slash := 1200 * coin.Unit * coin.Amount(p.DisputeSlashBps) / 10_000
	o := c.operator(prov.addr)
	if o.Disputes != 0 || o.Slashed != slash || o.Bonded != 1200*coin.Unit-slash {
		t.Fatalf("operator after the lost dispute: %+v, want %s slashed", o, slash)
	}
	if got := c.balance(cust.addr) - custBefore; got != 10*coin.Unit {
		t.Fatalf("customer refund: %s", got)
	}
	if got := c.burned() - burnedBefore; got < slash {
		t.Fatalf("burned %s, want at least the slashed %s", got, slash)
	}
	if po := c.payouts(bid)[0]; po.Status != "refunded" || !strings.Contains(po.Ruling, "60 AITBC of the provider's stake slashed") {
		t.Fatalf("payout: %+v", po)
	}

	// A dispute the customer withdraws ends without a slash.
	c.must(cust, market.NewDisputeMsg(pos[1].ID, "second thoughts"))
	c.must(cust, market.NewResolveMsg(pos[1].ID, false))
	if o := c.operator(prov.addr); o.Disputes != 0 || o.Slashed != slash {
		t.Fatalf("operator after a withdrawn dispute: %+v", o)
	}
	c.must(staker, staking.NewUnstakeMsg(prov.addr, 100*coin.Unit))
}
