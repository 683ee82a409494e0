package exchange_test

import (
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/exchange"
)

var rules = chainex.Ticker{FeeBps: 10, LotSize: 1000, MinAmount: coin.Unit}

// TestQuoteBuy: the expected price is the marginal ask the amount reaches
// (the batch auction's one price), the BTC needed is the amount at the
// worst price rounded up to the satoshi, as the chain holds it; asks
// beyond the slippage do not count.
func TestQuoteBuy(t *testing.T) {
	book := chainex.BookView{Asks: []chainex.Level{
		{PriceMsat: 1_005_000, Amount: 1000 * coin.Unit},
		{PriceMsat: 1_010_000, Amount: 1000 * coin.Unit},
	}}
	q, err := exchange.QuoteBuy(book, rules, uint64(1500*coin.Unit), 100)
	if err != nil {
		t.Fatal(err)
	}
	// worst 1,015,050 msat: 1,500 AITBC hold 1,522,575 sat; at 1,010,000
	// the fill costs 1,515,000 sat; the fee is 1.5 AITBC
	if q.MarginalMsat != 1_010_000 || q.WorstMsat != 1_015_050 || q.NeededSat != 1_522_575 || q.ExpectedSat != 1_515_000 ||
		q.Fee != 1_500_000 || q.Receive != 1_498_500_000 {
		t.Fatalf("quote %+v", q)
	}
	// rounding up: 1.001 AITBC at 1,015,050 msat = 1,016.06505 sat holds 1,017
	q, err = exchange.QuoteBuy(book, rules, 1_001_000, 100)
	if err != nil || q.NeededSat != 1_017 || q.ExpectedSat != 1_006 {
		t.Fatalf("small quote %+v %v", q, err)
	}
	// 1,500 AITBC within 0.4%: only the first level counts
	if _, err := exchange.QuoteBuy(book, rules, uint64(1500*coin.Unit), 40); !errors.Is(err, exchange.ErrCannotFill) {
		t.Fatalf("beyond the slippage: %v", err)
	}
	if _, err := exchange.QuoteBuy(book, rules, uint64(2001*coin.Unit), 5000); !errors.Is(err, exchange.ErrCannotFill) {
		t.Fatalf("more than the book: %v", err)
	}
	if _, err := exchange.QuoteBuy(chainex.BookView{}, rules, uint64(coin.Unit), 100); !errors.Is(err, exchange.ErrCannotFill) {
		t.Fatalf("empty book: %v", err)
	}
	for _, amt := range []uint64{0, 1_000_500, 999_000} { // zero, off the lot, under the minimum
		if _, err := exchange.QuoteBuy(book, rules, amt, 100); !errors.Is(err, exchange.ErrInvalidRequest) {
			t.Fatalf("amount %d: %v", amt, err)
		}
	}
}

// TestFillOf sums the buyer's trades in its block only, with the buyer's
// fee per fill rounded down.
func TestFillOf(t *testing.T) {
	me, other := address.Address{1}, address.Address{2}
	trades := []chainex.TradeView{
		{Height: 7, Buyer: me, Amount: 600_001_000, QuoteSats: 603_000, PriceMsat: 1_005_000, Price: "0.00001005"},
		{Height: 7, Buyer: me, Amount: 400_000_000, QuoteSats: 402_000, PriceMsat: 1_005_000, Price: "0.00001005"},
		{Height: 7, Buyer: other, Amount: 5_000_000, QuoteSats: 5_025},
		{Height: 6, Buyer: me, Amount: 9_000_000, QuoteSats: 9_000},
	}
	f := exchange.FillOf(trades, me, 7, 10)
	if f.Trades != 2 || f.Bought != 1_000_001_000 || f.SpentSat != 1_005_000 || f.Fee != 600_001+400_000 ||
		f.Received != f.Bought-f.Fee || f.Spent != "0.01005" || f.PriceMsat != 1_005_000 {
		t.Fatalf("fill %+v", f)
	}
}
