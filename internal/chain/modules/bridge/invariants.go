package bridge

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/aitbc/aitbc/internal/chain/module"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "bridge/supply", Check: k.checkSupply},
		{Name: "bridge/pending", Check: k.checkPending},
	}
}

// checkSupply: the bridge is btc's only minter and burner, so its supply
// is what was minted less what withdrawals burned.
func (k *Keeper) checkSupply(q module.Query) module.Finding {
	t, err := k.totals(q.State)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	sup, err := k.bank.SupplyOf(q.State, Denom)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	want := t.Minted - t.Withdrawn
	return module.Finding{Broken: t.Withdrawn > t.Minted || uint64(sup) != want,
		Detail:  fmt.Sprintf("btc supply %d sat, minted %d less withdrawn %d = %d", uint64(sup), t.Minted, t.Withdrawn, want),
		Figures: map[string]string{"supply_sat": strconv.FormatUint(uint64(sup), 10), "minted_sat": strconv.FormatUint(t.Minted, 10), "withdrawn_sat": strconv.FormatUint(t.Withdrawn, 10)}}
}

// checkPending: withdrawn less paid out is the sum of pending withdrawals.
func (k *Keeper) checkPending(q module.Query) module.Finding {
	t, err := k.totals(q.State)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	var sum uint64
	var n int
	var ierr error
	err = q.State.Iterate([]byte(pWDP), false, func(key, _ []byte) bool {
		w, ok, err := read[Withdrawal](q.State, keyWD(binary.BigEndian.Uint64(key[len(pWDP):])))
		if err != nil || !ok || w.PaidTx != nil {
			ierr = fmt.Errorf("pending withdrawal %x: record missing, unreadable or paid (%v)", key[len(pWDP):], err)
			return false
		}
		sum += w.Amount
		n++
		return true
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	want := t.Withdrawn - t.PaidOut
	return module.Finding{Broken: sum != want, Detail: fmt.Sprintf("%d pending withdrawals sum to %d sat; withdrawn %d less paid out %d = %d", n, sum, t.Withdrawn, t.PaidOut, want),
		Figures: map[string]string{"pending_sat": strconv.FormatUint(sum, 10), "pending": strconv.Itoa(n)}}
}
