package market_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
)

var escrow = address.Module(market.EscrowAccount)

// listing is a plain per-job service of provider p.
func listing(id string, price coin.Amount) market.ListingSpec {
	return market.ListingSpec{ID: id, Name: "Llama inference", Type: market.TypeAIInference, Price: price, Description: "fast",
		Params: []market.Param{{Key: "model", Value: "llama2"}}}
}

// TestBidAcceptSettle follows seed 001's first scenario on chain: a listing,
// a bid with its deposit held, its acceptance locking the whole payment,
// settle-payment held for the dispute window and then released with the
// protocol fee to the block's fee split — every balance checked to the unit.
func TestBidAcceptSettle(t *testing.T) {
	prov, cust := newAcct("provider", 1), newAcct("customer", 2)
	start := 1000 * coin.Unit
	c := newChain(t, nil, start, prov, cust)
	p := market.DefaultParams()

	c.must(prov, market.NewCreateMsg(listing("svc-llama", 5*coin.Unit)))
	if s := c.service("svc-llama"); s.Status != "active" || s.Price != 5*coin.Unit || s.Unit != market.UnitJob || s.Parameters["model"] != "llama2" {
		t.Fatalf("listing: %+v", s.ServiceView)
	}
	c.must(cust, market.NewBidMsg("svc-llama", 5*coin.Unit, 4, false)) // 20 AITBC for 4 jobs
	bids := c.bids("svc-llama")
	if len(bids) != 1 || bids[0].Status != "open" || bids[0].Deposit != p.BidDeposit || bids[0].Total != 20*coin.Unit {
		t.Fatalf("bids: %+v", bids)
	}
	bid := bids[0].ID
	if got, want := c.balance(cust.addr), start-p.BidDeposit-c.fee; got != want {
		t.Fatalf("customer after bid: %s, want %s", got, want)
	}
	if got := c.balance(escrow); got != p.BidDeposit {
		t.Fatalf("escrow after bid: %s", got)
	}

	c.must(prov, market.NewAcceptMsg(bid))
	a := c.agreement(bid)
	if a.Status != "active" || a.Locked != 20*coin.Unit || a.Remaining != 20*coin.Unit {
		t.Fatalf("agreement: %+v", a)
	}
	if got, want := c.balance(cust.addr), start-20*coin.Unit-c.fee; got != want {
		t.Fatalf("customer after accept: %s, want %s", got, want)
	}
	if got := c.balance(escrow); got != 20*coin.Unit {
		t.Fatalf("escrow after accept: %s", got)
	}

	burned := c.burned()
	c.must(cust, market.NewSettleMsg(bid, 11*coin.Unit))
	pos := c.payouts(bid)
	if len(pos) != 1 || pos[0].Status != "held" || pos[0].Amount != 11*coin.Unit {
		t.Fatalf("payouts: %+v", pos)
	}
	provBefore := c.balance(prov.addr)
	c.advance(p.DisputeWindow + 1)
	pos = c.payouts(bid)
	share, fee := p.Split(11 * coin.Unit)
	if pos[0].Status != "released" || pos[0].Paid != share || pos[0].Fee != fee || share+fee != 11*coin.Unit {
		t.Fatalf("released payout: %+v (share %s fee %s)", pos[0], share, fee)
	}
	if got := c.balance(prov.addr); got != provBefore+share {
		t.Fatalf("provider: %s, want %s", got, provBefore+share)
	}
	// The protocol fee joins the block's fees and is split with them: the
	// settle block burned its share of the settle's transaction fee, the
	// release block (no transactions) its share of the protocol fee.
	ap := app.DefaultParams()
	if got, want := c.burned()-burned, rewards.SplitFees(c.fee, ap.BurnBps, ap.TreasuryBps).Burn+rewards.SplitFees(fee, ap.BurnBps, ap.TreasuryBps).Burn; got != want {
		t.Fatalf("burned %s, want %s (the fee split of the settle's transaction fee and of the protocol fee %s)", got, want, fee)
	}
	// The rest is paid with a second settlement; the agreement completes
	// and the escrow account is empty.
	c.must(cust, market.NewSettleMsg(bid, 9*coin.Unit))
	c.advance(p.DisputeWindow + 1)
	a = c.agreement(bid)
	if a.Status != "completed" || a.Remaining != 0 || a.Drawn != 20*coin.Unit {
		t.Fatalf("completed agreement: %+v", a)
	}
	if got := c.balance(escrow); got != 0 {
		t.Fatalf("escrow after completion: %s", got)
	}
	share2, _ := p.Split(9 * coin.Unit)
	if got := c.balance(prov.addr); got != provBefore+share+share2 {
		t.Fatalf("provider paid %s, want %s", got-provBefore, share+share2)
	}
	pv := c.provider(prov.addr)
	if pv.Facts.Released != 2 || pv.Facts.Revenue != share+share2 || pv.Facts.Agreements != 1 {
		t.Fatalf("provider facts: %+v", pv.Facts)
	}

	// Rating the paid agreement: once, by its customer only.
	if err := c.do(prov, market.NewRateAgreementMsg(bid, 5, "self")); !errors.Is(err, market.ErrNotRateable) {
		t.Fatalf("provider rating itself: %v", err)
	}
	c.must(cust, market.NewRateAgreementMsg(bid, 4, "good"))
	if err := c.do(cust, market.NewRateAgreementMsg(bid, 5, "again")); !errors.Is(err, market.ErrAlreadyRated) {
		t.Fatalf("second rating: %v", err)
	}
	if pv := c.provider(prov.addr); pv.Facts.Ratings != 1 || pv.Facts.AvgRating != 4 {
		t.Fatalf("ratings: %+v", pv.Facts)
	}
}

// TestRefusalsChangeNothing sends every kind of bad input the issue lists
// and checks that each gets its specific error and leaves the state as it
// was, to the byte.
func TestRefusalsChangeNothing(t *testing.T) {
	prov, cust, other := newAcct("provider", 1), newAcct("customer", 2), newAcct("other", 3)
	c := newChain(t, nil, 1000*coin.Unit, prov, cust, other)
	p := market.DefaultParams()
	c.must(prov, market.NewCreateMsg(listing("svc-a", 2*coin.Unit)))
	c.must(prov, market.NewCreateMsg(listing("svc-paused", 2*coin.Unit)))
	c.must(prov, market.NewUpdateMsg("svc-paused", market.OpPause))
	c.must(prov, market.NewCreateMsg(listing("svc-closed", 2*coin.Unit)))
	c.must(prov, market.NewUpdateMsg("svc-closed", market.OpClose))
	c.must(cust, market.NewBidMsg("svc-a", 2*coin.Unit, 3, false))
	bid := c.bids("svc-a")[0].ID
	c.must(cust, market.NewBidMsg("svc-a", 2*coin.Unit, 2, false))
	other2 := c.bids("svc-a")[1].ID
	c.must(prov, market.NewAcceptMsg(bid))
	c.must(cust, market.NewSettleMsg(bid, coin.Unit))

	cases := []struct {
		name string
		who  *acct
		msg  func() []byte
		want error
	}{
		{"bid on paused", cust, func() []byte { return c.tx(cust, market.NewBidMsg("svc-paused", coin.Unit, 2, false)) }, market.ErrServicePaused},
		{"bid on closed", cust, func() []byte { return c.tx(cust, market.NewBidMsg("svc-closed", coin.Unit, 2, false)) }, market.ErrServiceClosed},
		{"bid on unknown", cust, func() []byte { return c.tx(cust, market.NewBidMsg("svc-nope", coin.Unit, 2, false)) }, market.ErrServiceNotFound},
		{"bid on own", prov, func() []byte { return c.tx(prov, market.NewBidMsg("svc-a", coin.Unit, 2, false)) }, market.ErrOwnService},
		{"bid below deposit", cust, func() []byte { return c.tx(cust, market.NewBidMsg("svc-a", p.BidDeposit/2, 1, false)) }, market.ErrBidBelowDeposit},
		{"bid zero price", cust, func() []byte { return c.tx(cust, market.NewBidMsg("svc-a", 0, 2, false)) }, market.ErrInvalidPrice},
		{"bid absurd price", cust, func() []byte { return c.tx(cust, market.NewBidMsg("svc-a", p.MaxPrice+1, 2, false)) }, market.ErrInvalidPrice},
		{"listing zero price", prov, func() []byte { return c.tx(prov, market.NewCreateMsg(listing("svc-z", 0))) }, market.ErrInvalidPrice},
		{"listing absurd price", prov, func() []byte { return c.tx(prov, market.NewCreateMsg(listing("svc-z", p.MaxPrice+1))) }, market.ErrInvalidPrice},
		{"listing bad type", prov, func() []byte {
			l := listing("svc-z", coin.Unit)
			l.Type = "mining"
			return c.tx(prov, market.NewCreateMsg(l))
		}, market.ErrInvalidListing},
		{"listing id taken", prov, func() []byte { return c.tx(prov, market.NewCreateMsg(listing("svc-a", coin.Unit))) }, market.ErrServiceExists},
		{"accept foreign bid", other, func() []byte { return c.tx(other, market.NewAcceptMsg(other2)) }, market.ErrNotBidProvider},
		{"accept twice", prov, func() []byte { return c.tx(prov, market.NewAcceptMsg(bid)) }, market.ErrBidNotOpen},
		{"settle more than locked", cust, func() []byte { return c.tx(cust, market.NewSettleMsg(bid, 6*coin.Unit)) }, market.ErrSettleExceeds},
		{"settle by provider", prov, func() []byte { return c.tx(prov, market.NewSettleMsg(bid, coin.Unit)) }, market.ErrNotCustomer},
		{"reprice under agreement", prov, func() []byte { return c.tx(prov, market.NewRepriceMsg("svc-a", 3*coin.Unit)) }, market.ErrRepriceLive},
		{"reprice by other", other, func() []byte { return c.tx(other, market.NewRepriceMsg("svc-paused", 3*coin.Unit)) }, market.ErrNotProvider},
		{"rate unpaid agreement by other", other, func() []byte { return c.tx(other, market.NewRateAgreementMsg(bid, 5, "x")) }, market.ErrNotRateable},
		{"rate six stars", cust, func() []byte { return c.tx(cust, market.NewRateAgreementMsg(bid, 6, "x")) }, market.ErrInvalidRating},
		{"rate job never run", cust, func() []byte { return c.tx(cust, market.NewRateMsg(make([]byte, 16), 5, "x")) }, market.ErrNotRateable},
		{"dispute by provider", prov, func() []byte { return c.tx(prov, market.NewDisputeMsg(c.payouts(bid)[0].ID, "no")) }, market.ErrNotCustomer},
		{"withdraw others' bid", other, func() []byte { return c.tx(other, market.NewWithdrawMsg(other2)) }, market.ErrNotCustomer},
		{"order nobody serves", cust, func() []byte {
			return c.tx(cust, market.NewOrderMsg(market.MsgOrder{Type: market.TypeAITraining, MaxPrice: coin.Unit, Units: 1}))
		}, market.ErrNoMatch},
	}
	for _, tc := range cases {
		before := c.fingerprint()
		raw := tc.msg()
		r := c.block([]*acct{tc.who}, raw)[0]
		if err := r.Err(); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			continue
		}
		if c.fingerprint() != before {
			t.Errorf("%s: refused, yet the state changed", tc.name)
		}
	}
}

// TestBidSpamCap: a customer's open bids on one service are capped; a
// withdrawn bid frees its place and its deposit returns.
func TestBidSpamCap(t *testing.T) {
	prov, cust := newAcct("provider", 1), newAcct("customer", 2)
	start := 1000 * coin.Unit
	c := newChain(t, nil, start, prov, cust)
	p := market.DefaultParams()
	c.must(prov, market.NewCreateMsg(listing("svc-a", 2*coin.Unit)))
	for i := 0; i < int(p.MaxOpenBids); i++ {
		c.must(cust, market.NewBidMsg("svc-a", 2*coin.Unit, 1, false))
	}
	before := c.fingerprint()
	if err := c.do(cust, market.NewBidMsg("svc-a", 2*coin.Unit, 1, false)); !errors.Is(err, market.ErrTooManyBids) {
		t.Fatalf("bid over the cap: %v", err)
	}
	if c.fingerprint() != before {
		t.Fatal("the refused bid changed state")
	}
	if got := c.balance(escrow); got != coin.Amount(p.MaxOpenBids)*p.BidDeposit {
		t.Fatalf("escrow holds %s", got)
	}
	c.must(cust, market.NewWithdrawMsg(c.bids("svc-a")[0].ID))
	c.must(cust, market.NewBidMsg("svc-a", 2*coin.Unit, 1, false))
	// Bids expire after their TTL and every deposit returns.
	// One block sweeps at most an hour of due work: a day later, the
	// chain catches up over the next blocks.
	c.advance(p.BidTTL + 1)
	if got := c.balance(escrow); got == 0 {
		t.Fatal("a block swept a whole day of due work at once")
	}
	for i := 0; i < 25; i++ {
		c.block(nil)
	}
	if got := c.balance(escrow); got != 0 {
		t.Fatalf("escrow after expiry: %s", got)
	}
	fees := coin.Amount(p.MaxOpenBids+2) * c.fee
	if got := c.balance(cust.addr); got != start-fees {
		t.Fatalf("customer: %s, want %s", got, start-fees)
	}
	for _, b := range c.bids("svc-a") {
		if b.Status == "open" {
			t.Fatalf("bid still open after its TTL: %+v", b)
		}
	}
}

// TestDisputeRefund: a payout disputed within the window is held past it;
// the provider's concession refunds it; a dispute after the window is
// refused; the provider's reputation counts the lost dispute.
func TestDisputeRefund(t *testing.T) {
	prov, cust := newAcct("provider", 1), newAcct("customer", 2)
	c := newChain(t, nil, 1000*coin.Unit, prov, cust)
	p := market.DefaultParams()
	c.must(prov, market.NewCreateMsg(listing("svc-a", 10*coin.Unit)))
	c.must(cust, market.NewBidMsg("svc-a", 10*coin.Unit, 2, false))
	bid := c.bids("svc-a")[0].ID
	c.must(prov, market.NewAcceptMsg(bid))
	c.must(cust, market.NewSettleMsg(bid, 10*coin.Unit))
	c.must(cust, market.NewSettleMsg(bid, 10*coin.Unit))
	pos := c.payouts(bid)
	if len(pos) != 2 {
		t.Fatalf("payouts: %+v", pos)
	}
	c.must(cust, market.NewDisputeMsg(pos[0].ID, "the model answered garbage"))
	custBefore, provBefore := c.balance(cust.addr), c.balance(prov.addr)
	c.advance(p.DisputeWindow + 1)
	if err := c.do(cust, market.NewDisputeMsg(pos[1].ID, "late")); !errors.Is(err, market.ErrDisputeWindow) {
		t.Fatalf("late dispute: %v", err)
	}
	pos = c.payouts(bid)
	if pos[0].Status != "disputed" || pos[1].Status != "released" {
		t.Fatalf("after the window: %s %s", pos[0].Status, pos[1].Status)
	}
	if got := c.balance(escrow); got != 10*coin.Unit {
		t.Fatalf("escrow holds %s, want the disputed 10 AITBC", got)
	}
	if err := c.do(prov, market.NewResolveMsg(pos[0].ID, false)); !errors.Is(err, market.ErrNotParty) {
		t.Fatalf("provider releasing to itself: %v", err)
	}
	c.must(prov, market.NewResolveMsg(pos[0].ID, true))
	if got := c.balance(cust.addr); got != custBefore+10*coin.Unit {
		t.Fatalf("customer refund: %s", got-custBefore)
	}
	share, _ := p.Split(10 * coin.Unit)
	if got := c.balance(prov.addr); got != provBefore+share-c.fee {
		t.Fatalf("provider: %s, want %s", got, provBefore+share-c.fee)
	}
	if got := c.balance(escrow); got != 0 {
		t.Fatalf("escrow: %s", got)
	}
	pv := c.provider(prov.addr)
	if pv.Facts.Disputes != 1 || pv.Facts.DisputesLost != 1 || pv.Reputation.Disputes >= 1000 {
		t.Fatalf("facts after a lost dispute: %+v %+v", pv.Facts, pv.Reputation)
	}
	if !strings.Contains(pv.Reputation.Why, "1 lost") {
		t.Fatalf("reputation does not say why: %q", pv.Reputation.Why)
	}
}
