package market_test

import (
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// FuzzMarketMessages sends arbitrary bodies under every market message
// type, from a customer and from a provider, to one chain with a listing,
// an open bid and an agreement: the app must not panic, the invariants
// must hold after every block (a broken one fails Commit), and a refused
// message must change nothing.
func FuzzMarketMessages(f *testing.F) {
	types := []string{market.TypeCreate, market.TypeCreateFor, market.TypeUpdate, market.TypeBid, market.TypeWithdraw, market.TypeReject,
		market.TypeAccept, market.TypeOrder, market.TypeSettle, market.TypeClaim, market.TypeClose, market.TypeBind, market.TypeRate,
		market.TypeDispute, market.TypeResolve}
	for i, m := range []tx.Msg{
		market.NewCreateMsg(listing("svc-f", coin.Unit)), market.NewBidMsg("svc-a", 2*coin.Unit, 2, false), market.NewAcceptMsg("bid-3"),
		market.NewSettleMsg("bid-4", coin.Unit), market.NewRepriceMsg("svc-a", 3*coin.Unit), market.NewDisputeMsg("po-1", "x"),
	} {
		f.Add(uint8(i), []byte(m.Body), i%2 == 0)
	}
	// One chain for the whole run (the state moves on as inputs succeed).
	prov, cust := newAcct("provider", 1), newAcct("customer", 2)
	c := newChain(f, nil, 1_000_000*coin.Unit, prov, cust)
	c.must(prov, market.NewCreateMsg(listing("svc-a", 2*coin.Unit)))
	c.must(cust, market.NewBidMsg("svc-a", 2*coin.Unit, 3, false))
	c.must(cust, market.NewBidMsg("svc-a", 2*coin.Unit, 3, false))
	c.must(prov, market.NewAcceptMsg(c.bids("svc-a")[0].ID))
	f.Fuzz(func(t *testing.T, kind uint8, body []byte, asProvider bool) {
		c.t = t
		who := cust
		if asProvider {
			who = prov
		}
		x := &tx.Tx{ChainID: chainID, Nonce: who.nonce, Fee: c.fee, Msg: tx.Msg{Type: types[int(kind)%len(types)], Body: body}}
		x.Sign(who.priv)
		raw, err := x.Encode()
		if err != nil {
			return // not a transaction at all
		}
		before := c.fingerprint()
		r := c.block([]*acct{who}, raw)[0]
		if r.code != 0 && c.fingerprint() != before {
			t.Fatalf("%s refused (%s), yet the state changed", x.Msg.Type, r.log)
		}
	})
}
