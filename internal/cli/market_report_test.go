package cli

import (
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
)

// TestReconcileNamesTheRecord: consistent books reconcile; each kind of
// mismatch is reported naming the record that does not add up.
func TestReconcileNamesTheRecord(t *testing.T) {
	p := market.DefaultParams()
	share, fee := p.Split(10 * coin.Unit)
	agrs := func() []market.AgreementView {
		return []market.AgreementView{
			{ID: "bid-1", Locked: 30 * coin.Unit, Drawn: 20 * coin.Unit, Remaining: 10 * coin.Unit, Status: "active"},
			{ID: "bid-2", Locked: 5 * coin.Unit, Refunded: 5 * coin.Unit, Status: "closed"},
		}
	}
	pays := func() []market.PayoutView {
		return []market.PayoutView{
			{ID: "po-3", Agreement: "bid-1", Amount: 10 * coin.Unit, Status: "released", Paid: share, Fee: fee},
			{ID: "po-4", Agreement: "bid-1", Amount: 10 * coin.Unit, Status: "held"},
		}
	}
	open := []market.BidView{{ID: "bid-9", Deposit: coin.Unit}}
	escrow := 21 * coin.Unit // 1 deposit + 10 remaining + 10 held
	if r := Reconcile(p, agrs(), pays(), open, &escrow); !r.OK || r.Paid != share || r.Fees != fee || r.Refunded != 5*coin.Unit {
		t.Fatalf("consistent books: %+v", r)
	}
	cases := []struct {
		name string
		mut  func(a []market.AgreementView, p []market.PayoutView, esc *coin.Amount)
		want string
	}{
		{"agreement sum", func(a []market.AgreementView, _ []market.PayoutView, _ *coin.Amount) { a[0].Remaining++ }, "agreement bid-1"},
		{"payout split", func(_ []market.AgreementView, p []market.PayoutView, _ *coin.Amount) { p[0].Paid--; p[0].Fee++ }, "payout po-3"},
		{"payouts vs drawn", func(_ []market.AgreementView, p []market.PayoutView, _ *coin.Amount) { p[1].Amount-- }, "agreement bid-1: its payouts"},
		{"ended but holds", func(a []market.AgreementView, _ []market.PayoutView, _ *coin.Amount) {
			a[1].Refunded--
			a[1].Remaining++
		}, "agreement bid-2 is closed"},
		{"escrow", func(_ []market.AgreementView, _ []market.PayoutView, e *coin.Amount) { *e++ }, "escrow account"},
		{"held but paid", func(_ []market.AgreementView, p []market.PayoutView, _ *coin.Amount) { p[1].Paid = 1 }, "payout po-4 is held"},
	}
	for _, tc := range cases {
		a, ps, e := agrs(), pays(), escrow
		tc.mut(a, ps, &e)
		r := Reconcile(p, a, ps, open, &e)
		if r.OK || !strings.Contains(strings.Join(r.Problems, "; "), tc.want) {
			t.Errorf("%s: ok=%v problems %q, want one naming %q", tc.name, r.OK, r.Problems, tc.want)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	for in, want := range map[string]string{"5m": "5m0s", "1h": "1h0m0s", "24h": "24h0m0s", "7d": "168h0m0s", "": "0s"} {
		d, err := parsePeriod(in)
		if err != nil || d.String() != want {
			t.Errorf("%q: %v %v", in, d, err)
		}
	}
	for _, bad := range []string{"x", "-1h", "0d", "7y"} {
		if _, err := parsePeriod(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
