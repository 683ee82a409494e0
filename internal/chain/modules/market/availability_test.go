package market_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
)

// TestAListingWhoseWindowEndedIsStoredButNotAvailable: seed 000's
// service_config.json offers all of 2024; written in 2026, the listing is
// kept with its window, shown as not available now and left out of the
// "available now" filter; a bid on it is refused naming the window, and
// nothing changes. A job bound to an agreement whose listing's window
// has since ended is refused the same way.
func TestAListingWhoseWindowEndedIsStoredButNotAvailable(t *testing.T) {
	prov, cust, coord := newAcct("provider", 1), newAcct("customer", 2), newAcct("coordinator", 3)
	c := newChain(t, nil, 1000*coin.Unit, prov, cust, coord)
	c.now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Unix()
	c.miner(prov, "llama2", coin.Unit/10)

	old := listing("gpu-2024", 10*coin.Unit)
	old.From = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	old.Until = time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	c.must(prov, market.NewCreateMsg(old))
	s := c.service("gpu-2024")
	if s.AvailableNow || s.From == nil || s.Until == nil || s.Until.Year() != 2024 || s.Status != "active" {
		t.Fatalf("listing: %+v", s.ServiceView)
	}
	v, err := c.query("/api/v1/market/services", req{query: map[string]string{"available": "now"}})
	if err != nil || len(v.(market.ServiceList).Services) != 0 {
		t.Fatalf("available now: %+v %v", v, err)
	}
	before := c.fingerprint()
	err = c.do(cust, market.NewBidMsg("gpu-2024", 10*coin.Unit, 1, false))
	if !errors.Is(err, market.ErrUnavailable) || !strings.Contains(err.Error(), "from 2024-01-01T00:00:00Z to 2024-12-31T23:59:59Z") {
		t.Fatalf("bid on an expired listing: %v", err)
	}
	if c.fingerprint() != before {
		t.Fatal("a refused bid changed the market's state")
	}

	// Bought while available; the window ends before the job is bound.
	soon := listing("gpu-soon", 2*coin.Unit)
	soon.AutoAccept = true
	soon.Until = c.now + 100
	c.must(prov, market.NewCreateMsg(soon))
	c.must(cust, market.NewBidMsg("gpu-soon", 2*coin.Unit, 2, true))
	agr := c.bids("gpu-soon")[0].ID
	j1 := c.createJob(cust, coord, 1, coin.Unit, "llama2")
	c.must(cust, market.NewBindMsg(agr, j1))
	c.advance(200)
	j2 := c.createJob(cust, coord, 2, coin.Unit, "llama2")
	err = c.do(cust, market.NewBindMsg(agr, j2))
	if !errors.Is(err, market.ErrUnavailable) || !strings.Contains(err.Error(), "until "+time.Unix(soon.Until, 0).UTC().Format(time.RFC3339)) {
		t.Fatalf("binding after the window: %v", err)
	}
	if a := c.agreement(agr); a.Jobs != 1 {
		t.Fatalf("agreement after the refused bind: %+v", a)
	}
}
