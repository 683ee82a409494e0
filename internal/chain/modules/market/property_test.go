package market_test

import (
	"math/rand/v2"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
)

// TestRandomActions drives the marketplace with random messages from a
// few accounts, several to a block, for many blocks. Every block is
// audited by the app's invariants (the escrow account equals the sum of
// open deposits, locks and held payouts; payouts add up to what each
// agreement drew); the test adds that the supply is conserved — balances
// plus burned equal what genesis created — and that the bookkeeping of
// each agreement reconciles: locked = drawn + refunded + remaining, and
// each released payout's paid + fee is its amount.
func TestRandomActions(t *testing.T) {
	seed := uint64(20261129)
	rng := rand.New(rand.NewPCG(seed, 7))
	accts := []*acct{newAcct("p1", 1), newAcct("p2", 2), newAcct("c1", 3), newAcct("c2", 4)}
	mp := market.DefaultParams()
	mp.DisputeWindow = 5
	mp.CloseDelay = 3
	mp.BidTTL = 40
	mp.MaxOpenBids = 3
	c := newChain(t, &mp, 200*coin.Unit, accts...)
	genesis := 200 * coin.Unit * coin.Amount(len(accts))

	services := []string{"svc-a", "svc-b", "svc-h"}
	for i, id := range services {
		s := listing(id, coin.Amount(1+i)*coin.Unit)
		if id == "svc-h" {
			s.Type, s.Unit, s.Capacity = market.TypeGPURental, market.UnitHour, 2
		}
		c.must(accts[i%2], market.NewCreateMsg(s))
	}
	byAddr := map[string]*acct{}
	for _, a := range accts {
		byAddr[a.addr.String()] = a
	}
	// party is usually the record's right party, sometimes anyone: the
	// refusals are part of the test.
	party := func(right string) *acct {
		if a := byAddr[right]; a != nil && rng.IntN(5) > 0 {
			return a
		}
		return accts[rng.IntN(len(accts))]
	}
	ok := 0
	for blk := 0; blk < 200; blk++ {
		var bl market.BidList
		var al market.AgreementList
		var pl market.PayoutList
		for route, dst := range map[string]any{"/api/v1/market/bids": &bl, "/api/v1/market/agreements": &al, "/api/v1/market/payouts": &pl} {
			v, err := c.query(route, req{})
			if err != nil {
				t.Fatal(err)
			}
			switch d := dst.(type) {
			case *market.BidList:
				*d = v.(market.BidList)
			case *market.AgreementList:
				*d = v.(market.AgreementList)
			case *market.PayoutList:
				*d = v.(market.PayoutList)
			}
		}
		var raws [][]byte
		var signers []*acct
		used := map[*acct]bool{}
		for i := 0; i < 1+rng.IntN(4); i++ {
			amt := coin.Amount(rng.IntN(8)+1) * coin.Unit / 2
			svc := services[rng.IntN(len(services))]
			who := accts[2+rng.IntN(2)] // a customer
			msg := market.NewBidMsg(svc, amt, uint64(1+rng.IntN(4)), rng.IntN(2) == 0)
			act := rng.IntN(12)
			switch {
			case act >= 1 && act <= 2 && len(bl.Bids) > 0:
				b := bl.Bids[rng.IntN(len(bl.Bids))]
				if act == 1 {
					who, msg = party(b.Provider.String()), market.NewAcceptMsg(b.ID)
				} else {
					who, msg = party(b.Customer.String()), market.NewWithdrawMsg(b.ID)
				}
			case act >= 3 && act <= 6 && len(al.Agreements) > 0:
				a := al.Agreements[rng.IntN(len(al.Agreements))]
				switch act {
				case 3:
					who, msg = party(a.Customer.String()), market.NewSettleMsg(a.ID, amt)
				case 4:
					who, msg = party([]string{a.Customer.String(), a.Provider.String()}[rng.IntN(2)]), market.NewCloseMsg(a.ID)
				case 5:
					who, msg = party(a.Provider.String()), market.NewClaimMsg(a.ID)
				default:
					who, msg = party(a.Customer.String()), market.NewRateAgreementMsg(a.ID, uint8(1+rng.IntN(5)), "ok")
				}
			case act >= 7 && act <= 8 && len(pl.Payouts) > 0:
				p := pl.Payouts[rng.IntN(len(pl.Payouts))]
				if act == 7 {
					who, msg = party(p.Customer.String()), market.NewDisputeMsg(p.ID, "bad")
				} else {
					refund := rng.IntN(2) == 0
					right := p.Customer.String()
					if refund {
						right = p.Provider.String()
					}
					who, msg = party(right), market.NewResolveMsg(p.ID, refund)
				}
			case act == 9:
				who, msg = party(accts[0].addr.String()), market.NewUpdateMsg(svc, []string{market.OpPause, market.OpResume}[rng.IntN(2)])
			case act == 10:
				who, msg = accts[rng.IntN(2)], market.NewRepriceMsg(svc, amt)
			}
			if used[who] { // one transaction per signer and block: nonces stay simple
				continue
			}
			used[who] = true
			raws = append(raws, c.tx(who, msg))
			signers = append(signers, who)
		}
		c.now += int64(rng.IntN(400)) // leases accrue, windows pass
		for _, r := range c.block(signers, raws...) {
			if r.code == 0 {
				ok++
			}
		}
		c.checkBooks(genesis)
	}
	if ok < 100 {
		t.Fatalf("only %d of the random messages succeeded: the test exercises too little", ok)
	}
	t.Logf("%d messages succeeded", ok)
}

// checkBooks checks that supply is conserved and that every agreement and
// payout reconciles to the unit.
func (c *chain) checkBooks(genesis coin.Amount) {
	c.t.Helper()
	err := c.app.Committed(func(q module.Query) error {
		sp, err := c.app.Bank().Supply(q.State)
		if err != nil {
			return err
		}
		// Genesis also funds the faucet's module account; these chains mint
		// nothing after it (no block reward, see newChain).
		if sp.Circulating+sp.Burned != sp.Minted || sp.Minted != sp.Genesis || sp.Genesis < genesis {
			c.t.Fatalf("supply: circulating %s + burned %s, minted %s, genesis %s (accounts %s)", sp.Circulating, sp.Burned, sp.Minted, sp.Genesis, genesis)
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	v, err := c.query("/api/v1/market/agreements", req{})
	if err != nil {
		c.t.Fatal(err)
	}
	for _, a := range v.(market.AgreementList).Agreements {
		if a.Drawn+a.Refunded+a.Remaining != a.Locked {
			c.t.Fatalf("agreement %s: drawn %s + refunded %s + remaining %s != locked %s", a.ID, a.Drawn, a.Refunded, a.Remaining, a.Locked)
		}
	}
	v, err = c.query("/api/v1/market/payouts", req{})
	if err != nil {
		c.t.Fatal(err)
	}
	for _, p := range v.(market.PayoutList).Payouts {
		switch p.Status {
		case "released":
			if p.Paid+p.Fee != p.Amount {
				c.t.Fatalf("payout %s: paid %s + fee %s != %s", p.ID, p.Paid, p.Fee, p.Amount)
			}
		case "refunded":
			if p.Refund != p.Amount {
				c.t.Fatalf("payout %s: refund %s != %s", p.ID, p.Refund, p.Amount)
			}
		}
	}
}
