package exchange_test

import (
	"math/rand/v2"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/modules/exchange"
)

type E = exchange.Entry

func sum(fills []exchange.Fill, id uint64, buy bool) uint64 {
	var s uint64
	for _, f := range fills {
		if buy && f.Buy == id || !buy && f.Sell == id {
			s += f.Amount
		}
	}
	return s
}

// TestClearingPriceMaximizesVolume: the uniform price is the one at which
// the most volume trades; everyone trades at it.
func TestClearingPriceMaximizesVolume(t *testing.T) {
	// Buys: 10 @ 110, 10 @ 100. Sells: 5 @ 95, 10 @ 100, 10 @ 105.
	// At 100: demand 20, supply 15 → 15. At 105: demand 10, supply 25 → 10.
	// At 95: demand 20, supply 5 → 5. At 110: 10. So 100 trades most.
	buys := []E{{ID: 1, Price: 110, Amount: 10}, {ID: 2, Price: 100, Amount: 10}}
	sells := []E{{ID: 3, Price: 95, Amount: 5}, {ID: 4, Price: 100, Amount: 10}, {ID: 5, Price: 105, Amount: 10}}
	p, fills := exchange.Clear(buys, sells)
	if p != 100 {
		t.Fatalf("price %d, want 100", p)
	}
	// 15 trade: buy 1 (better price) fills 10, buy 2 gets the last 5.
	if sum(fills, 1, true) != 10 || sum(fills, 2, true) != 5 || sum(fills, 3, false) != 5 || sum(fills, 4, false) != 10 || sum(fills, 5, false) != 0 {
		t.Fatalf("fills %+v", fills)
	}
}

// TestTieBreaksToMidpoint: one buy at 110 and one sell at 100 of the same
// size trade at any price between: the midpoint, 105.
func TestTieBreaksToMidpoint(t *testing.T) {
	p, fills := exchange.Clear([]E{{ID: 1, Price: 110, Amount: 7}}, []E{{ID: 2, Price: 100, Amount: 7}})
	if p != 105 || len(fills) != 1 || fills[0].Amount != 7 {
		t.Fatalf("price %d fills %+v", p, fills)
	}
	// Rounded down to the unit: 100..101 → 100.
	if p, _ := exchange.Clear([]E{{ID: 1, Price: 101, Amount: 1}}, []E{{ID: 2, Price: 100, Amount: 1}}); p != 100 {
		t.Fatalf("price %d, want 100 (midpoint rounded down)", p)
	}
}

// TestTieBreaksOnImbalance: equal volume at two prices: the one leaving
// the smaller imbalance wins.
func TestTieBreaksOnImbalance(t *testing.T) {
	// At 100: demand 10+3, supply 10 → 10, imbalance 3. At 102: demand
	// 10, supply 10+... sells 100x10 only → demand 10 supply 10 → 10, imb 0.
	buys := []E{{ID: 1, Price: 102, Amount: 10}, {ID: 2, Price: 100, Amount: 3}}
	sells := []E{{ID: 3, Price: 100, Amount: 10}}
	p, _ := exchange.Clear(buys, sells)
	if p != 102 {
		t.Fatalf("price %d, want 102 (no imbalance)", p)
	}
}

// TestTimePriorityRationsAtOnePrice: at the same price, the earlier order
// (lower id) fills first; the later one is filled partially.
func TestTimePriorityRationsAtOnePrice(t *testing.T) {
	buys := []E{{ID: 9, Price: 100, Amount: 10}, {ID: 4, Price: 100, Amount: 10}}
	sells := []E{{ID: 1, Price: 100, Amount: 15}}
	p, fills := exchange.Clear(buys, sells)
	if p != 100 || sum(fills, 4, true) != 10 || sum(fills, 9, true) != 5 {
		t.Fatalf("price %d fills %+v: order 4 came first and must fill fully", p, fills)
	}
}

// TestNoCrossNoTrade: a buy below every sell trades nothing.
func TestNoCrossNoTrade(t *testing.T) {
	if p, fills := exchange.Clear([]E{{ID: 1, Price: 99, Amount: 1}}, []E{{ID: 2, Price: 100, Amount: 1}}); p != 0 || len(fills) != 0 {
		t.Fatalf("price %d fills %+v", p, fills)
	}
}

// TestQuoteRoundsDownToTheSatoshi: 1.5 AITBC at 1,000,000 msat (0.00001
// BTC) is 1,500 sat; 1 base unit at that price is 0.001 sat → 0.
func TestQuoteRoundsDownToTheSatoshi(t *testing.T) {
	if q, ok := exchange.Quote(1_500_000, 1_000_000); !ok || q != 1500 {
		t.Fatalf("quote %d", q)
	}
	if q, _ := exchange.Quote(1, 1_000_000); q != 0 {
		t.Fatalf("quote %d", q)
	}
	if q, _ := exchange.Quote(1_000_001, 999_999); q != 999 {
		t.Fatalf("quote %d", q) // 999.999999999 → 999
	}
}

// TestAuctionPropertiesOnRandomBooks: on random books, every fill is
// between a buy priced at or above the clearing price and a sell at or
// below it, no order fills beyond its amount, both sides fill the same
// volume, no other price trades more, and the book left does not cross.
func TestAuctionPropertiesOnRandomBooks(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 2000; round++ {
		var buys, sells []E
		id := uint64(0)
		for i := r.IntN(8) + 1; i > 0; i-- {
			id++
			buys = append(buys, E{ID: id, Price: 90 + r.Uint64N(20), Amount: 1 + r.Uint64N(50)})
		}
		for i := r.IntN(8) + 1; i > 0; i-- {
			id++
			sells = append(sells, E{ID: id, Price: 90 + r.Uint64N(20), Amount: 1 + r.Uint64N(50)})
		}
		p, fills := exchange.Clear(buys, sells)
		byID := map[uint64]E{}
		for _, e := range append(append([]E{}, buys...), sells...) {
			byID[e.ID] = e
		}
		filled := map[uint64]uint64{}
		var vol uint64
		for _, f := range fills {
			if byID[f.Buy].Price < p || byID[f.Sell].Price > p || f.Amount == 0 {
				t.Fatalf("round %d: fill %+v at %d violates a limit", round, f, p)
			}
			filled[f.Buy] += f.Amount
			filled[f.Sell] += f.Amount
			vol += f.Amount
		}
		for id, n := range filled {
			if n > byID[id].Amount {
				t.Fatalf("round %d: order %d filled %d of %d", round, id, n, byID[id].Amount)
			}
		}
		// No price trades more (brute force over 85..115).
		for q := uint64(85); q <= 115; q++ {
			var d, s uint64
			for _, e := range buys {
				if e.Price >= q {
					d += e.Amount
				}
			}
			for _, e := range sells {
				if e.Price <= q {
					s += e.Amount
				}
			}
			if min(d, s) > vol {
				t.Fatalf("round %d: price %d trades %d, the auction at %d only %d", round, q, min(d, s), p, vol)
			}
		}
		// What is left does not cross.
		bestBid, bestAsk := uint64(0), uint64(1<<62)
		for _, e := range buys {
			if filled[e.ID] < e.Amount {
				bestBid = max(bestBid, e.Price)
			}
		}
		for _, e := range sells {
			if filled[e.ID] < e.Amount {
				bestAsk = min(bestAsk, e.Price)
			}
		}
		if bestBid >= bestAsk {
			t.Fatalf("round %d: book still crosses after clearing at %d: bid %d ask %d; buys %+v sells %+v fills %+v", round, p, bestBid, bestAsk, buys, sells, fills)
		}
	}
}
