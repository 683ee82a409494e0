package exchange

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// ledger gathers what EndBlock owes and which counters its closes lower,
// so that each account's balance of a denomination and each counter is
// read and written once per block rather than once per order: a trader
// with several orders filled in one block gets one payment per
// denomination (fills and returned holds together). Nothing is written
// until flush, which applies everything in sorted order, so the writes do
// not depend on map order; the sums are the same as order by order.
type ledger struct {
	pay   map[payKey]uint64   // what the module account pays out
	count map[countKey]uint64 // open orders closed, per owner and side
	expN  map[int64]uint64    // orders closed, per expiry height
}

type payKey struct {
	owner address.Address
	denom string
}

type countKey struct {
	owner address.Address
	side  Side
}

func newLedger() *ledger {
	return &ledger{pay: map[payKey]uint64{}, count: map[countKey]uint64{}, expN: map[int64]uint64{}}
}

// payOut records amount of denom owed to owner.
func (l *ledger) payOut(owner address.Address, denom string, amount uint64) error {
	if amount == 0 {
		return nil
	}
	k := payKey{owner, denom}
	s := l.pay[k] + amount
	if s < amount {
		return fmt.Errorf("exchange: payment to %s overflows", owner)
	}
	l.pay[k] = s
	return nil
}

// closeOrder removes an open order's keys and records its returned hold
// and its counters. The order must be open (in state) when called.
func (l *ledger) closeOrder(kv *state.Cache, o Order) error {
	owner, err := address.FromBytes(o.Owner)
	if err != nil {
		return fmt.Errorf("exchange: order %d: %w", o.ID, err)
	}
	if err := l.payOut(owner, o.HeldDenom(), o.Held); err != nil {
		return err
	}
	l.count[countKey{owner, o.Side}]++
	kv.Delete(keyOrder(o.ID))
	kv.Delete(keyBook(o))
	kv.Delete(keyOwner(o.Owner, o.ID))
	if o.Market {
		kv.Delete(keyMarket(o.ID))
	} else {
		kv.Delete(keyExpiry(o.Expires, o.ID))
		l.expN[o.Expires]++
	}
	return nil
}

// flush pays what was recorded from the module account and lowers the
// counters, in sorted order, and empties the ledger.
func (l *ledger) flush(kv *state.Cache, k *Keeper) error {
	pays := make([]payKey, 0, len(l.pay))
	for p := range l.pay {
		pays = append(pays, p)
	}
	slices.SortFunc(pays, func(a, b payKey) int {
		if c := bytes.Compare(a.owner[:], b.owner[:]); c != 0 {
			return c
		}
		return cmpString(a.denom, b.denom)
	})
	for _, p := range pays {
		if err := k.bank.SendDenom(kv, k.account, p.owner, p.denom, coin.Amount(l.pay[p])); err != nil {
			return err
		}
	}
	counts := make([]countKey, 0, len(l.count))
	for c := range l.count {
		counts = append(counts, c)
	}
	slices.SortFunc(counts, func(a, b countKey) int {
		if c := bytes.Compare(a.owner[:], b.owner[:]); c != 0 {
			return c
		}
		return int(a.side) - int(b.side)
	})
	for _, c := range counts {
		if err := lower(kv, keyCount(c.owner[:], c.side), l.count[c]); err != nil {
			return err
		}
	}
	heights := make([]int64, 0, len(l.expN))
	for h := range l.expN {
		heights = append(heights, h)
	}
	slices.Sort(heights)
	for _, h := range heights {
		if err := lower(kv, keyExpN(h), l.expN[h]); err != nil {
			return err
		}
	}
	clear(l.pay)
	clear(l.count)
	clear(l.expN)
	return nil
}

// lower takes by from the counter under key, stopping at zero. A counter
// already at zero is not written: order-by-order closing wrote nothing
// then, and a write (even a deletion) enters the block's app hash.
func lower(kv *state.Cache, key []byte, by uint64) error {
	n, err := getUint(kv, key)
	if err != nil || n == 0 {
		return err
	}
	putUint(kv, key, n-min(n, by))
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
