package exchange

import (
	"cmp"
	"math/bits"
	"slices"
)

// Entry is one order as the auction sees it: its id (placement order: a
// lower id came first), its limit price and what is left of it.
type Entry struct {
	ID     uint64
	Price  uint64 // millisatoshi per AITBC
	Amount uint64 // AITBC base units left
}

// Fill is what one pair of orders trades in an auction.
type Fill struct {
	Buy, Sell uint64 // order ids
	Amount    uint64 // AITBC base units
}

// Clear runs one uniform-price batch auction. buys and sells are the
// orders that cross (a buy at or above the lowest sell price, a sell at
// or below the highest buy price), in any order. It returns the clearing
// price and the fills; no fills when nothing crosses.
//
// The price rule (docs/EXCHANGE.md):
//  1. The price is one of the orders' limit prices, the one at which the
//     most volume trades: min(Σ buys priced ≥ p, Σ sells priced ≤ p).
//  2. Ties: the price with the smallest imbalance |demand − supply|.
//  3. Still tied (a range of prices): the midpoint of the lowest and the
//     highest, rounded down to the millisatoshi, if it trades the same
//     volume with the same imbalance; otherwise the lowest.
//
// Every buy priced at or above the clearing price and every sell priced at
// or below it is eligible; the matched volume is given out in price-time
// priority (best price first, then the earlier order), so only the last
// order filled on the long side is filled partially. Fills pair the buys
// and sells in that same order.
func Clear(buys, sells []Entry) (price uint64, fills []Fill) {
	if len(buys) == 0 || len(sells) == 0 {
		return 0, nil
	}
	buys, sells = sortedBuys(buys), sortedSells(sells)
	cands := make([]uint64, 0, len(buys)+len(sells))
	for _, e := range buys {
		cands = append(cands, e.Price)
	}
	for _, e := range sells {
		cands = append(cands, e.Price)
	}
	slices.Sort(cands)
	cands = dedup(cands)

	// Demand falls and supply rises as the price rises: one pass over the
	// candidates in ascending order, with a cursor on each side, gives
	// every price's volume in O(n).
	var demand, supply uint64
	for _, e := range buys {
		demand += e.Amount
	}
	bi, si := len(buys)-1, 0 // buys are sorted by price descending
	var bestV, bestImb uint64
	var tied []uint64
	for _, p := range cands {
		for bi >= 0 && buys[bi].Price < p {
			demand -= buys[bi].Amount
			bi--
		}
		for si < len(sells) && sells[si].Price <= p {
			supply += sells[si].Amount
			si++
		}
		v, imb := supply, demand-supply
		if demand < supply {
			v, imb = demand, supply-demand
		}
		switch {
		case v > bestV || v == bestV && v > 0 && imb < bestImb:
			bestV, bestImb, tied = v, imb, []uint64{p}
		case v == bestV && v > 0 && imb == bestImb:
			tied = append(tied, p)
		}
	}
	if bestV == 0 {
		return 0, nil
	}
	price = tied[0]
	if len(tied) > 1 {
		mid := tied[0] + (tied[len(tied)-1]-tied[0])/2
		if v, imb := volumeAt(buys, sells, mid); v == bestV && imb == bestImb {
			price = mid
		}
	}
	return price, allocate(buys, sells, price, bestV)
}

// volumeAt returns the volume that trades at p and the imbalance there.
func volumeAt(buys, sells []Entry, p uint64) (vol, imb uint64) {
	var d, s uint64
	for _, e := range buys {
		if e.Price >= p {
			d += e.Amount
		}
	}
	for _, e := range sells {
		if e.Price <= p {
			s += e.Amount
		}
	}
	if d < s {
		return d, s - d
	}
	return s, d - s
}

// allocate gives out vol to the eligible orders of each side in priority
// order and pairs them.
func allocate(buys, sells []Entry, p, vol uint64) []Fill {
	bq := take(buys, vol, func(e Entry) bool { return e.Price >= p })
	sq := take(sells, vol, func(e Entry) bool { return e.Price <= p })
	// Each fill uses up an order on one side at least, so there are
	// fewer fills than orders taken: one allocation for all of them.
	fills := make([]Fill, 0, len(bq)+len(sq))
	i, j := 0, 0
	for i < len(bq) && j < len(sq) {
		a := min(bq[i].Amount, sq[j].Amount)
		fills = append(fills, Fill{Buy: bq[i].ID, Sell: sq[j].ID, Amount: a})
		bq[i].Amount -= a
		sq[j].Amount -= a
		if bq[i].Amount == 0 {
			i++
		}
		if sq[j].Amount == 0 {
			j++
		}
	}
	return fills
}

// take returns the eligible entries, in order, with amounts capped so
// that they sum to vol.
func take(side []Entry, vol uint64, eligible func(Entry) bool) []Entry {
	out := make([]Entry, 0, len(side))
	for _, e := range side {
		if vol == 0 {
			break
		}
		if !eligible(e) {
			continue
		}
		e.Amount = min(e.Amount, vol)
		vol -= e.Amount
		out = append(out, e)
	}
	return out
}

func sortedBuys(in []Entry) []Entry {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Price != b.Price {
			return cmp.Compare(b.Price, a.Price) // highest first
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

func sortedSells(in []Entry) []Entry {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Price != b.Price {
			return cmp.Compare(a.Price, b.Price)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

func dedup(s []uint64) []uint64 {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Quote is the BTC, in satoshis, of amount AITBC base units at price
// millisatoshi per AITBC, rounded down to the satoshi: amount × price /
// 10^9 (10^6 base units per AITBC, 10^3 millisatoshi per satoshi). ok is
// false if it does not fit in 64 bits (sats is then the quotient's low 64
// bits). 128-bit arithmetic in registers: every fill computes it, and
// math/big allocated four times a call.
func Quote(amount, price uint64) (sats uint64, ok bool) {
	hi, lo := bits.Mul64(amount, price)
	return div1e9(hi, lo)
}

// quoteCeil is Quote rounded up: what a buy order holds.
func quoteCeil(amount, price uint64) (uint64, bool) {
	hi, lo := bits.Mul64(amount, price)
	lo, carry := bits.Add64(lo, 999_999_999, 0)
	return div1e9(hi+carry, lo) // hi ≤ 2^64−2 for a product of two uint64: no overflow
}

// div1e9 divides the 128-bit hi:lo by 10^9: the low 64 bits of the
// quotient, and whether the quotient fits in them.
func div1e9(hi, lo uint64) (uint64, bool) {
	const d = 1_000_000_000
	q0, _ := bits.Div64(hi%d, lo, d)
	return q0, hi/d == 0
}
