package bridge

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "bridge/supply", Check: k.checkSupply},
		{Name: "bridge/pending", Check: k.checkPending},
		{Name: "bridge/locks", Check: k.checkLocks},
	}
}

// checkLocks: an output is locked by a withdrawal exactly when that
// withdrawal's proposal spends it, and a proposal belongs to a pending
// withdrawal, so no output can be in two payouts.
func (k *Keeper) checkLocks(q module.Query) module.Finding {
	locked := map[string]uint64{} // outpoint key → withdrawal id + 1
	var ierr error
	err := q.State.Iterate([]byte(pUTXO), false, func(key, raw []byte) bool {
		var u UTXO
		if err := tx.Unmarshal(raw, &u); err != nil {
			ierr = err
			return false
		}
		if u.Lock != 0 {
			locked[string(key)] = u.Lock
		}
		return true
	})
	props := 0
	if err == nil && ierr == nil {
		err = q.State.Iterate([]byte(pProp), false, func(key, raw []byte) bool {
			id := binary.BigEndian.Uint64(key[len(pProp):])
			var pr Proposal
			if err := tx.Unmarshal(raw, &pr); err != nil {
				ierr = err
				return false
			}
			if p, err := q.State.Get(keyWDP(id)); err != nil || p == nil {
				ierr = fmt.Errorf("proposal of withdrawal %d, which is not pending", id)
				return false
			}
			t, err := DecodePayoutTx(pr.Tx)
			if err != nil {
				ierr = err
				return false
			}
			for _, in := range t.TxIn {
				kk := string(keyUTXO(in.PreviousOutPoint.Hash[:], in.PreviousOutPoint.Index))
				if locked[kk] != id+1 {
					ierr = fmt.Errorf("withdrawal %d's payout spends %s, not locked by it", id, in.PreviousOutPoint)
					return false
				}
				delete(locked, kk)
			}
			props++
			return true
		})
	}
	if err == nil {
		err = ierr
	}
	if err == nil && len(locked) > 0 {
		err = fmt.Errorf("%d outputs locked by no proposal", len(locked))
	}
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Finding{Detail: fmt.Sprintf("%d payout proposals, their inputs locked by them alone", props),
		Figures: map[string]string{"proposals": strconv.Itoa(props)}}
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
