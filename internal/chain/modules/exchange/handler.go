package exchange

import (
	"errors"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	switch msg.Type {
	case TypePlace:
		b, err := DecodePlace(msg)
		if err != nil {
			return err
		}
		id, err := k.Place(ctx.KV, ctx.Height, ctx.Signer, b)
		if err != nil {
			return err
		}
		ctx.Note(fmt.Sprintf("order %d", id))
		return nil
	case TypeCancel:
		b, err := DecodeCancel(msg)
		if err != nil {
			return err
		}
		return k.Cancel(ctx.KV, ctx.Signer, b.ID)
	default:
		return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
	}
}

// Describe implements module.Describer.
func (k *Keeper) Describe(msg tx.Msg) (any, error) {
	switch msg.Type {
	case TypePlace:
		b, err := DecodePlace(msg)
		if err != nil {
			return nil, err
		}
		return map[string]any{"side": b.Side.String(), "market": b.Market, "price": FormatPrice(b.Price), "price_msat": b.Price,
			"amount": coin.Amount(b.Amount), "expires": b.Expires}, nil
	case TypeCancel:
		b, err := DecodeCancel(msg)
		if err != nil {
			return nil, err
		}
		return map[string]any{"order_id": b.ID}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

// Place checks an order against the parameters, the owner's balance and
// open orders, then holds its funds and puts it in the book, where it
// waits for the end of the block's auction. It returns the order's id.
func (k *Keeper) Place(kv *state.Cache, height int64, owner address.Address, m MsgPlace) (uint64, error) {
	p, err := k.Params(kv)
	if err != nil {
		return 0, err
	}
	// Guard clauses first: nothing is written until every check passed.
	if m.Price > p.MaxPrice {
		return 0, fmt.Errorf("%w: %d msat above the maximum %d", ErrPrice, m.Price, p.MaxPrice)
	}
	if m.Amount%p.LotSize != 0 {
		return 0, fmt.Errorf("%w: %s AITBC is not a multiple of the lot %s", ErrAmount, coin.Amount(m.Amount), coin.Amount(p.LotSize))
	}
	if m.Amount < p.MinAmount {
		return 0, fmt.Errorf("%w: %s AITBC, the minimum is %s", ErrBelowMinimum, coin.Amount(m.Amount), coin.Amount(p.MinAmount))
	}
	value, _ := Quote(m.Amount, m.Price)
	if value < p.MinValue {
		return 0, fmt.Errorf("%w: worth %d sat, the minimum is %d", ErrBelowMinimum, value, p.MinValue)
	}
	expires := height
	if !m.Market {
		switch {
		case m.Expires == 0:
			expires = height + p.DefaultLifetime
		case m.Expires < height || m.Expires > height+p.MaxLifetime:
			return 0, fmt.Errorf("%w: %d (now %d, at most %d blocks ahead)", ErrExpiry, m.Expires, height, p.MaxLifetime)
		default:
			expires = m.Expires
		}
	}
	o := Order{Owner: owner[:], Side: m.Side, Market: m.Market, Price: m.Price, Amount: m.Amount, Height: height, Expires: expires}
	if o.Held, err = holdFor(p, m.Side, m.Amount, m.Price); err != nil {
		return 0, err
	}
	bal, err := k.bank.BalanceOf(kv, owner, o.HeldDenom())
	if err != nil {
		return 0, err
	}
	if uint64(bal) < o.Held {
		return 0, fmt.Errorf("%w: holds %s %s, the order needs %s", ErrBeyondBalance, formatDenom(uint64(bal), o.HeldDenom()), o.HeldDenom(), formatDenom(o.Held, o.HeldDenom()))
	}
	open, err := getUint(kv, keyCount(owner[:], m.Side))
	if err != nil {
		return 0, err
	}
	other, err := getUint(kv, keyCount(owner[:], otherSide(m.Side)))
	if err != nil {
		return 0, err
	}
	if open+other >= p.MaxOpenPerAccount {
		return 0, fmt.Errorf("%w: %d", ErrTooManyOpen, open+other)
	}
	bh, placed, err := blockCount(kv)
	if err != nil {
		return 0, err
	}
	if bh != height {
		placed = 0
	}
	if placed >= p.MaxOrdersPerBlock {
		return 0, fmt.Errorf("%w: %d orders this block", ErrBlockFull, placed)
	}
	expN, err := getUint(kv, keyExpN(expires))
	if err != nil {
		return 0, err
	}
	if !m.Market && expN >= p.MaxOrdersPerBlock {
		return 0, fmt.Errorf("%w: %d orders already expire at height %d; choose another", ErrExpiry, expN, expires)
	}
	if other > 0 { // only an owner with orders on the other side can trade with itself
		if err := k.checkSelfTrade(kv, owner, m); err != nil {
			return 0, err
		}
	}

	seq, err := getUint(kv, keySeq)
	if err != nil {
		return 0, err
	}
	o.ID = seq + 1
	if err := k.bank.SendDenom(kv, owner, k.account, o.HeldDenom(), coin.Amount(o.Held)); err != nil {
		if errors.Is(err, bank.ErrInsufficientFunds) {
			return 0, fmt.Errorf("%w: %v", ErrBeyondBalance, err)
		}
		return 0, err
	}
	putUint(kv, keySeq, o.ID)
	kv.Set(keyBlock, cat(be(uint64(height)), be(placed+1)))
	putUint(kv, keyCount(owner[:], m.Side), open+1)
	kv.Set(keyOwner(owner[:], o.ID), []byte{1})
	kv.Set(keyBook(o), be(o.ID))
	if m.Market {
		kv.Set(keyMarket(o.ID), []byte{1})
	} else {
		kv.Set(keyExpiry(expires, o.ID), []byte{1})
		putUint(kv, keyExpN(expires), expN+1)
	}
	return o.ID, putOrder(kv, o)
}

// holdFor is what an order holds: a buy its value at its limit price,
// rounded up to the satoshi (every fill pays at most that, rounded down);
// a sell its amount and the largest fee it can pay.
func holdFor(p Params, side Side, amount, price uint64) (uint64, error) {
	if side == Buy {
		q, ok := quoteCeil(amount, price)
		if !ok {
			return 0, fmt.Errorf("%w: value overflows", ErrPrice)
		}
		return q, nil
	}
	return amount + amount/10_000*p.FeeBps + amount%10_000*p.FeeBps/10_000, nil
}

// checkSelfTrade refuses an order that could match one of its owner's
// open orders on the other side (a buy at or above one of its own sells,
// a sell at or below one of its own buys): the exchange's self-trade rule
// is to refuse the newer order, so an account never trades with itself.
func (k *Keeper) checkSelfTrade(kv *state.Cache, owner address.Address, m MsgPlace) error {
	var found *Order
	var bad error
	err := kv.Iterate(cat(prefixOwner, owner[:]), false, func(key, _ []byte) bool {
		id := beUint(key[len(key)-8:])
		o, err := getOrder(kv, id)
		if err != nil {
			bad = err
			return false
		}
		if o.Side != m.Side && (m.Side == Buy && m.Price >= o.Price || m.Side == Sell && m.Price <= o.Price) {
			found = &o
			return false
		}
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return err
	}
	if found != nil {
		return fmt.Errorf("%w: your %s order %d at %s", ErrSelfTrade, found.Side, found.ID, FormatPrice(found.Price))
	}
	return nil
}

// Cancel closes one of owner's open orders and returns what it holds.
func (k *Keeper) Cancel(kv *state.Cache, owner address.Address, id uint64) error {
	o, err := getOrder(kv, id)
	if err != nil {
		return err
	}
	if string(o.Owner) != string(owner[:]) {
		return fmt.Errorf("%w: order %d", ErrNotOwner, id)
	}
	return k.close(kv, o)
}

// close removes an open order, refunding what it still holds.
func (k *Keeper) close(kv *state.Cache, o Order) error {
	l := newLedger()
	if err := l.closeOrder(kv, o); err != nil {
		return err
	}
	return l.flush(kv, k)
}

func blockCount(r state.Reader) (int64, uint64, error) {
	v, err := r.Get(keyBlock)
	if err != nil || len(v) == 0 {
		return 0, 0, err
	}
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("exchange: corrupt block counter")
	}
	return int64(beUint(v[:8])), beUint(v[8:]), nil
}

func getOrder(r state.Reader, id uint64) (Order, error) {
	var o Order
	v, err := r.Get(keyOrder(id))
	if err != nil {
		return o, err
	}
	if v == nil {
		return o, fmt.Errorf("%w: %d", ErrOrderNotFound, id)
	}
	if err := tx.Unmarshal(v, &o); err != nil {
		return o, fmt.Errorf("exchange: order %d: %w", id, err)
	}
	return o, nil
}

func putOrder(kv *state.Cache, o Order) error {
	b, err := tx.Marshal(o)
	if err != nil {
		return err
	}
	kv.Set(keyOrder(o.ID), b)
	return nil
}

func beUint(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n
}

func otherSide(s Side) Side {
	if s == Buy {
		return Sell
	}
	return Buy
}
