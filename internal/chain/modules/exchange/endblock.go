package exchange

import (
	"fmt"
	"sort"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// EndBlock implements module.EndBlocker: the block's batch auction, then
// the market orders' remainders are refunded and the orders whose last
// height this is expire. The book is uncrossed afterwards, so only orders
// placed in the next block can cross it.
func (k *Keeper) EndBlock(ctx *module.Context) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if _, err := k.Auction(ctx.KV, p, ctx.Height, ctx.Time.Unix()); err != nil {
		return fmt.Errorf("exchange: auction: %w", err)
	}
	if err := k.closeAll(ctx.KV, prefixMarket); err != nil {
		return fmt.Errorf("exchange: market remainders: %w", err)
	}
	if err := k.closeAll(ctx.KV, cat(prefixExpiry, be(uint64(ctx.Height)))); err != nil {
		return fmt.Errorf("exchange: expiries: %w", err)
	}
	return nil
}

// closeAll closes every order whose id ends a key under prefix.
func (k *Keeper) closeAll(kv *state.Cache, prefix []byte) error {
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
		if err := k.close(kv, o); err != nil {
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
	buys, sells, err := crossing(kv)
	if err != nil || len(buys) == 0 {
		return AuctionResult{}, err
	}
	price, fills := Clear(buys, sells)
	if len(fills) == 0 {
		return AuctionResult{}, nil
	}
	orders := map[uint64]*Order{}
	var touched []uint64
	load := func(id uint64) (*Order, error) {
		if o, ok := orders[id]; ok {
			return o, nil
		}
		o, err := getOrder(kv, id)
		if err != nil {
			return nil, err
		}
		orders[id] = &o
		touched = append(touched, id)
		return &o, nil
	}
	tseq, err := getUint(kv, keyTradeSeq)
	if err != nil {
		return AuctionResult{}, err
	}
	var fees, volume uint64
	paid := map[uint64]uint64{} // what each touched order is paid this block
	for _, f := range fills {
		b, err := load(f.Buy)
		if err != nil {
			return AuctionResult{}, err
		}
		s, err := load(f.Sell)
		if err != nil {
			return AuctionResult{}, err
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
		paid[b.ID] += f.Amount - feeB
		paid[s.ID] += q
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
	sort.Slice(touched, func(i, j int) bool { return touched[i] < touched[j] })
	for _, id := range touched {
		o := orders[id]
		owner, err := address.FromBytes(o.Owner)
		if err != nil {
			return AuctionResult{}, err
		}
		out := QuoteDenom
		if o.Side == Buy {
			out = BaseDenom
		}
		if amt := paid[id]; amt > 0 {
			if err := k.bank.SendDenom(kv, k.account, owner, out, coin.Amount(amt)); err != nil {
				return AuctionResult{}, err
			}
		}
		if o.Left() == 0 {
			if err := k.close(kv, *o); err != nil {
				return AuctionResult{}, err
			}
			continue
		}
		if err := putOrder(kv, *o); err != nil {
			return AuctionResult{}, err
		}
	}
	if err := k.bank.CollectFee(kv, k.account, coin.Amount(fees)); err != nil {
		return AuctionResult{}, err
	}
	putUint(kv, keyTradeSeq, tseq)
	kv.Set(keyLast, cat(be(uint64(height)), be(price)))
	return AuctionResult{Price: price, Volume: volume, Trades: len(fills)}, nil
}

// feeOf is the fee on a fill of amount: floor(amount × bps / 10,000).
func feeOf(amount, bps uint64) uint64 {
	return amount/10_000*bps + amount%10_000*bps/10_000
}

// crossing reads the orders that can trade: the buys priced at or above
// the lowest sell and the sells priced at or below the highest buy. The
// book left by the previous block does not cross, so these are this
// block's new orders and the resting orders they reach.
func crossing(r state.View) (buys, sells []Entry, err error) {
	bestBid, okB, err := first(r, prefixBuys)
	if err != nil || !okB {
		return nil, nil, err
	}
	bestAsk, okS, err := first(r, prefixSells)
	if err != nil || !okS || bestBid < bestAsk {
		return nil, nil, err
	}
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
			*out = append(*out, Entry{ID: o.ID, Price: o.Price, Amount: o.Left()})
			return true
		})
		if err == nil {
			err = bad
		}
		return err
	}
	if err := read(prefixBuys, func(p uint64) bool { return p >= bestAsk }, &buys); err != nil {
		return nil, nil, err
	}
	if err := read(prefixSells, func(p uint64) bool { return p <= bestBid }, &sells); err != nil {
		return nil, nil, err
	}
	return buys, sells, nil
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
