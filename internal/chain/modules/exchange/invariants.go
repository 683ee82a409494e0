package exchange

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "exchange/held", Check: k.checkHeld},
		{Name: "exchange/book", Check: k.checkBook},
	}
}

// checkHeld: the module account holds, per denomination, exactly the sum
// of the open orders' held funds.
func (k *Keeper) checkHeld(q module.Query) module.Finding {
	held, n, err := sumHeld(q.State)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	f := module.Finding{Figures: map[string]string{"orders": fmt.Sprint(n)}}
	var parts []string
	for _, d := range []string{BaseDenom, QuoteDenom} {
		bal, err := k.bank.BalanceOf(q.State, k.account, d)
		if err != nil {
			return module.Finding{Broken: true, Detail: err.Error()}
		}
		if uint64(bal) != held[d] {
			f.Broken = true
		}
		f.Figures[d+"_balance"], f.Figures[d+"_held"] = fmt.Sprint(uint64(bal)), fmt.Sprint(held[d])
		parts = append(parts, fmt.Sprintf("%s %s (orders hold %s)", formatDenom(uint64(bal), d), d, formatDenom(held[d], d)))
	}
	f.Detail = fmt.Sprintf("account %s holds %s and %s for %d open orders", k.account, parts[0], parts[1], n)
	return f
}

func sumHeld(r state.View) (map[string]uint64, int, error) {
	held := map[string]uint64{}
	n := 0
	var bad error
	err := r.Iterate(prefixOrder, false, func(key, _ []byte) bool {
		o, err := getOrder(r, beUint(key[len(prefixOrder):]))
		if err != nil {
			bad = err
			return false
		}
		held[o.HeldDenom()] += o.Held
		n++
		return true
	})
	if err == nil {
		err = bad
	}
	return held, n, err
}

// checkBook: every open order is in the book once, and the book names no
// closed order; the book does not cross at a block boundary.
func (k *Keeper) checkBook(q module.Query) module.Finding {
	var inBook, orders int
	var bad error
	for _, prefix := range [][]byte{prefixBuys, prefixSells} {
		err := q.State.Iterate(prefix, false, func(key, _ []byte) bool {
			o, err := getOrder(q.State, beUint(key[len(key)-8:]))
			if err != nil {
				bad = err
				return false
			}
			if string(keyBook(o)) != string(key) {
				bad = fmt.Errorf("book entry %x does not match order %d", key, o.ID)
				return false
			}
			inBook++
			return true
		})
		if err != nil {
			bad = err
		}
	}
	if bad == nil {
		bad = q.State.Iterate(prefixOrder, false, func(_, _ []byte) bool { orders++; return true })
	}
	if bad != nil {
		return module.Finding{Broken: true, Detail: bad.Error()}
	}
	bid, okB, _ := first(q.State, prefixBuys)
	ask, okS, _ := first(q.State, prefixSells)
	crossed := okB && okS && bid >= ask
	return module.Finding{
		Broken:  inBook != orders || crossed,
		Detail:  fmt.Sprintf("%d open orders, %d book entries; best bid %s, best ask %s", orders, inBook, FormatPrice(bid), FormatPrice(ask)),
		Figures: map[string]string{"orders": fmt.Sprint(orders), "book": fmt.Sprint(inBook)},
	}
}
