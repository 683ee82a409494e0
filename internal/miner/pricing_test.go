package miner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/miner"
)

func TestDynamicPriceFollowsUtilizationWithinTheBounds(t *testing.T) {
	for _, tc := range []struct {
		lo, hi coin.Amount
		u      float64
		want   coin.Amount
	}{
		{10, 20, 0, 10},
		{10, 20, 1, 20},
		{10, 20, 0.5, 15},
		{10, 20, 2, 20},   // over: the upper bound
		{10, 20, -1, 10},  // under: the lower bound
		{10, 10, 0.7, 10}, // fixed bounds
		{coin.Unit, 3 * coin.Unit, 0.25, coin.Unit + coin.Unit/2},
	} {
		if got := miner.DynamicPrice(tc.lo, tc.hi, tc.u); got != tc.want {
			t.Errorf("DynamicPrice(%s, %s, %v) = %s, want %s", tc.lo, tc.hi, tc.u, got, tc.want)
		}
	}
}

// fakeMarket answers market.QueryServices with its listings.
type fakeMarket struct{ services []market.ServiceView }

func (f *fakeMarket) GetJSON(_ context.Context, path string, out any) error {
	if !strings.HasPrefix(path, "/api/v1/market/services") {
		return fmt.Errorf("not served: %s", path)
	}
	out.(*market.ServiceList).Services = append([]market.ServiceView(nil), f.services...)
	return nil
}

// sentMsgs records the messages a pricer sends.
type sentMsgs struct{ msgs []market.MsgUpdate }

func (s *sentMsgs) Send(_ context.Context, msg tx.Msg) (string, error) {
	var u market.MsgUpdate
	if err := msg.DecodeBody(&u); err != nil {
		return "", err
	}
	s.msgs = append(s.msgs, u)
	return fmt.Sprintf("0x%02d", len(s.msgs)), nil
}

// TestPricerRepricesDynamicListingsFromUtilization: a busy miner raises
// its dynamic listing to the upper bound through the market's reprice
// message; it reprices a listing at most once per interval, ignores a
// move under a step, leaves listings with live agreements, fixed-price
// ones and other providers' alone; when it idles it comes back down.
func TestPricerRepricesDynamicListingsFromUtilization(t *testing.T) {
	var prov, other address.Address
	prov[0], other[0] = 1, 2
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	util := 1.0
	fm := &fakeMarket{services: []market.ServiceView{
		{ID: "dyn", Provider: prov, Status: "active", Strategy: "dynamic", Price: 10 * coin.Unit, PriceMin: 10 * coin.Unit, PriceMax: 20 * coin.Unit},
		{ID: "leased", Provider: prov, Status: "active", Strategy: "dynamic", Price: 10 * coin.Unit, PriceMin: 10 * coin.Unit, PriceMax: 20 * coin.Unit, Live: 1},
		{ID: "fixed", Provider: prov, Status: "active", Price: 10 * coin.Unit},
		{ID: "paused", Provider: prov, Status: "paused", Strategy: "dynamic", Price: 10 * coin.Unit, PriceMin: 10 * coin.Unit, PriceMax: 20 * coin.Unit},
		{ID: "theirs", Provider: other, Status: "active", Strategy: "dynamic", Price: 10 * coin.Unit, PriceMin: 10 * coin.Unit, PriceMax: 20 * coin.Unit},
	}}
	sent := &sentMsgs{}
	p := &miner.Pricer{Provider: prov, Chain: fm, Sender: sent, Utilization: func() float64 { return util },
		MinInterval: 5 * time.Minute, Now: func() time.Time { return now }}

	r, err := p.Step(t.Context())
	if err != nil || len(r) != 1 || r[0].Service != "dyn" || r[0].To != 20*coin.Unit {
		t.Fatalf("busy: %+v %v", r, err)
	}
	if len(sent.msgs) != 1 || sent.msgs[0].Op != market.OpReprice || sent.msgs[0].ID != "dyn" || sent.msgs[0].Price != 20*coin.Unit {
		t.Fatalf("sent %+v", sent.msgs)
	}
	fm.services[0].Price = 20 * coin.Unit

	// Idle now, but the listing was repriced a minute ago: nothing.
	util = 0
	now = now.Add(time.Minute)
	if r, err := p.Step(t.Context()); err != nil || len(r) != 0 {
		t.Fatalf("within the interval: %+v %v", r, err)
	}
	// After the interval the moving average has come down a little
	// (two idle samples): the price follows, within the bounds.
	now = now.Add(5 * time.Minute)
	r, err = p.Step(t.Context())
	if err != nil || len(r) != 1 || r[0].To >= 20*coin.Unit || r[0].To < 10*coin.Unit {
		t.Fatalf("after the interval: %+v %v", r, err)
	}
	fm.services[0].Price = r[0].To
	// A move under a step ((20 - 10) / 20 = 0.5 AITBC) is not sent.
	p2 := &miner.Pricer{Provider: prov, Chain: &fakeMarket{services: []market.ServiceView{
		{ID: "dyn", Provider: prov, Status: "active", Strategy: "dynamic", Price: 15 * coin.Unit, PriceMin: 10 * coin.Unit, PriceMax: 20 * coin.Unit},
	}}, Sender: sent, Utilization: func() float64 { return 0.52 }, Now: func() time.Time { return now }}
	if r, err := p2.Step(t.Context()); err != nil || len(r) != 0 {
		t.Fatalf("a small move: %+v %v", r, err)
	}
	for _, m := range sent.msgs {
		if m.ID != "dyn" {
			t.Fatalf("repriced %s", m.ID)
		}
	}
}

// TestPricerReportsAChainItCannotRead: a failed read is an error, and
// nothing is sent.
func TestPricerReportsAChainItCannotRead(t *testing.T) {
	sent := &sentMsgs{}
	p := &miner.Pricer{Chain: failing{}, Sender: sent, Utilization: func() float64 { return 1 }}
	if _, err := p.Step(t.Context()); err == nil || len(sent.msgs) != 0 {
		t.Fatalf("%v, sent %d", err, len(sent.msgs))
	}
}

type failing struct{}

func (failing) GetJSON(context.Context, string, any) error { return fmt.Errorf("node down") }
