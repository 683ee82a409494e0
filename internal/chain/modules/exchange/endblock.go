package exchange

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// EndBlock implements module.EndBlocker: the block's batch auction, then
// the market orders' remainders are refunded and the orders whose last
// height this is expire. The book is uncrossed afterwards, so only orders
// placed in the next block can cross it. What the module account pays out
// (fills, returned holds) is gathered per account and paid once at the
// end (ledger).
func (k *Keeper) EndBlock(ctx *module.Context) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	l := newLedger()
	if _, err := k.auction(ctx.KV, l, p, ctx.Height, ctx.Time.Unix()); err != nil {
		return fmt.Errorf("exchange: auction: %w", err)
	}
	if err := closeAll(ctx.KV, l, prefixMarket); err != nil {
		return fmt.Errorf("exchange: market remainders: %w", err)
	}
	if err := closeAll(ctx.KV, l, cat(prefixExpiry, be(uint64(ctx.Height)))); err != nil {
		return fmt.Errorf("exchange: expiries: %w", err)
	}
	if err := l.flush(ctx.KV, k); err != nil {
		return fmt.Errorf("exchange: settlement: %w", err)
	}
	return nil
}

// closeAll closes every order whose id ends a key under prefix.
func closeAll(kv *state.Cache, l *ledger, prefix []byte) error {
	var ids []uint64
	if err := kv.Iterate(prefix, false, func(key, _ []byte) bool {
		ids = append(ids, beUint(key[len(key)-8:]))
		return true
	}); err != nil {
		return err
	}
	for _, id := range ids {
		o, err := getOrder(kv, id)
		if err != nil {
			return err
		}
		if err := l.closeOrder(kv, o); err != nil {
			return err
		}
	}
	return nil
}

// AuctionResult is what one block's auction did.
type AuctionResult struct {
	Price  uint64
	Volume uint64 // AITBC base units
	Trades int
}

// Auction clears the crossing part of the book at one price (Clear) and
// settles every fill: the buyer gets the AITBC less its fee, the seller
// the btc, the fees go to the fee collector, filled orders close and
// return what they still hold.
func (k *Keeper) Auction(kv *state.Cache, p Params, height, unix int64) (AuctionResult, error) {
	l := newLedger()
	r, err := k.auction(kv, l, p, height, unix)
	if err != nil {
		return r, err
	}
	return r, l.flush(kv, k)
}

// auction is Auction with the payments left in l.
func (k *Keeper) auction(kv *state.Cache, l *ledger, p Params, height, unix int64) (AuctionResult, error) {
	buys, sells, orders, err := crossing(kv)
	if err != nil || len(buys) == 0 {
		return AuctionResult{}, err
	}
	price, fills := Clear(buys, sells)
	if len(fills) == 0 {
		return AuctionResult{}, nil
	}
	tseq, err := getUint(kv, keyTradeSeq)
	if err != nil {
		return AuctionResult{}, err
	}
	var fees, volume uint64
	touched := make([]*Order, 0, 2*len(fills))
	seen := make(map[uint64]bool, 2*len(fills))
	for _, f := range fills {
		b, s := orders[f.Buy], orders[f.Sell]
		if b == nil || s == nil {
			return AuctionResult{}, fmt.Errorf("fill between orders %d and %d not in the crossing book", f.Buy, f.Sell)
		}
		q, _ := Quote(f.Amount, price)
		feeB, feeS := feeOf(f.Amount, p.FeeBps), feeOf(f.Amount, p.FeeBps)
		// The holds were sized so that these never go below zero; a
		// shortfall is a bug, and halting beats paying from other orders.
		if b.Held < q || s.Held < f.Amount+feeS || b.Left() < f.Amount || s.Left() < f.Amount {
			return AuctionResult{}, fmt.Errorf("fill of %d between orders %d and %d exceeds what they hold", f.Amount, b.ID, s.ID)
		}
		b.Held -= q
		b.Filled += f.Amount
		b.Received += f.Amount - feeB
		s.Held -= f.Amount + feeS
		s.Filled += f.Amount
		s.Received += q
		for _, o := range []*Order{b, s} {
			if !seen[o.ID] {
				seen[o.ID] = true
				touched = append(touched, o)
			}
		}
		if err := payTo(l, b.Owner, BaseDenom, f.Amount-feeB); err != nil {
			return AuctionResult{}, err
		}
		if err := payTo(l, s.Owner, QuoteDenom, q); err != nil {
			return AuctionResult{}, err
		}
		fees += feeB + feeS
		volume += f.Amount
		tseq++
		t := Trade{Seq: tseq, Height: height, Time: unix, Price: price, Amount: f.Amount, Quote: q, Buy: b.ID, Sell: s.ID,
			Buyer: b.Owner, Seller: s.Owner, BuyerFee: feeB, SellFee: feeS}
		rec, err := tx.Marshal(t)
		if err != nil {
			return AuctionResult{}, err
		}
		kv.Set(keyTrade(tseq), rec)
		if tseq > MaxTradesKept {
			kv.Delete(keyTrade(tseq - MaxTradesKept))
		}
	}
	// Fees first: the module account pays the collector now and the
	// traders at the ledger's flush, from what the orders held.
	if err := k.bank.CollectFee(kv, k.account, coin.Amount(fees)); err != nil {
		return AuctionResult{}, err
	}
	for _, o := range touched {
		if o.Left() == 0 {
			if err := l.closeOrder(kv, *o); err != nil {
				return AuctionResult{}, err
			}
			continue
		}
		if err := putOrder(kv, *o); err != nil {
			return AuctionResult{}, err
		}
	}
	putUint(kv, keyTradeSeq, tseq)
	kv.Set(keyLast, cat(be(uint64(height)), be(price)))
	return AuctionResult{Price: price, Volume: volume, Trades: len(fills)}, nil
}

func payTo(l *ledger, owner []byte, denom string, amount uint64) error {
	a, err := address.FromBytes(owner)
	if err != nil {
		return err
	}
	return l.payOut(a, denom, amount)
}

// feeOf is the fee on a fill of amount: floor(amount × bps / 10,000).
func feeOf(amount, bps uint64) uint64 {
	return amount/10_000*bps + amount%10_000*bps/10_000
}

// crossing reads the orders that can trade: the buys priced at or above
// the lowest sell and the sells priced at or below the highest buy, and
// each one's record, decoded once for the whole auction. The book left by
// the previous block does not cross, so these are this block's new orders
// and the resting orders they reach.
func crossing(r state.View) (buys, sells []Entry, orders map[uint64]*Order, err error) {
	bestAsk, okS, err := first(r, prefixSells)
	if err != nil || !okS {
		return nil, nil, nil, err
	}
	orders = map[uint64]*Order{}
	read := func(prefix []byte, keep func(price uint64) bool, out *[]Entry) error {
		var bad error
		err := r.Iterate(prefix, false, func(key, _ []byte) bool {
			price := bookPrice(prefix, key)
			if !keep(price) {
				return false
			}
			o, err := getOrder(r, beUint(key[len(key)-8:]))
			if err != nil {
				bad = err
				return false
			}
			orders[o.ID] = &o
			*out = append(*out, Entry{ID: o.ID, Price: o.Price, Amount: o.Left()})
			return true
		})
		if err == nil {
			err = bad
		}
		return err
	}
	// Buys first, best first: the walk stops at the first buy below the
	// best ask, so a book that does not cross costs one key per side.
	if err := read(prefixBuys, func(p uint64) bool { return p >= bestAsk }, &buys); err != nil || len(buys) == 0 {
		return nil, nil, nil, err
	}
	bestBid := buys[0].Price
	if err := read(prefixSells, func(p uint64) bool { return p <= bestBid }, &sells); err != nil {
		return nil, nil, nil, err
	}
	return buys, sells, orders, nil
}

// first returns the best price on one side of the book.
func first(r state.View, prefix []byte) (uint64, bool, error) {
	var price uint64
	var ok bool
	err := r.Iterate(prefix, false, func(key, _ []byte) bool {
		price, ok = bookPrice(prefix, key), true
		return false
	})
	return price, ok, err
}

func bookPrice(prefix, key []byte) uint64 {
	v := beUint(key[len(prefix) : len(prefix)+8])
	if string(prefix) == string(prefixBuys) {
		return ^v
	}
	return v
}
