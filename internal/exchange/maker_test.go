package exchange_test

import (
	"context"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/exchange"
)

// TestMarketMakerKeepsItsQuotes: a funded maker quotes five asks around
// the reference (1 BTC = 100,000 AITBC); a second round adds nothing;
// once a buyer takes the best ask, the next round puts it back; with btc
// it quotes bids too.
func TestMarketMakerKeepsItsQuotes(t *testing.T) {
	e := newEnv(t)
	e.newWallet("mm", 100_000*coin.Unit, 0)
	e.newWallet("buyer", 0, 10_000_000)
	m := exchange.NewMaker(e.c, e.w, exchange.MakerConfig{Wallet: "mm"})
	ctx := context.Background()
	round := func() {
		t.Helper()
		if err := m.Round(ctx); err != nil {
			t.Fatal(err)
		}
		e.c.endBlock()
	}
	round()
	var book chainex.BookView
	e.call("GET", "/api/exchange/book", "", nil, &book)
	if len(book.Asks) != 5 || len(book.Bids) != 0 || book.Asks[0].PriceMsat != 1_005_000 || book.Asks[4].PriceMsat != 1_025_000 || book.Asks[0].Amount != 1000*coin.Unit {
		t.Fatalf("book after the first round: %+v", book)
	}
	round()
	e.call("GET", "/api/exchange/book", "", nil, &book)
	if len(book.Asks) != 5 || book.Asks[0].Orders != 1 {
		t.Fatalf("second round duplicated quotes: %+v", book)
	}
	if _, err := e.w.SignAndSubmit(ctx, "buyer", "", chainex.NewPlaceMsg(chainex.Buy, true, 1_005_000, uint64(1000*coin.Unit), 0), 0); err != nil {
		t.Fatal(err)
	}
	e.c.endBlock()
	e.call("GET", "/api/exchange/book", "", nil, &book)
	if len(book.Asks) != 4 {
		t.Fatalf("the best ask was not taken: %+v", book)
	}
	round() // the maker now holds btc from the sale: bids too
	e.call("GET", "/api/exchange/book", "", nil, &book)
	if len(book.Asks) != 5 || len(book.Bids) == 0 || book.Bids[0].PriceMsat != 995_000 {
		t.Fatalf("book after refilling: %+v", book)
	}
}
