package rentals

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "rentals/escrow", Check: k.checkEscrow},
		{Name: "rentals/leases", Check: k.checkLeases},
	}
}

// checkEscrow: rentals.escrow holds exactly what the leases still hold.
func (k *Keeper) checkEscrow(q module.Query) module.Finding {
	var sum coin.Amount
	var bad error
	err := q.State.Iterate(leasePrefix, false, func(key, _ []byte) bool {
		l, err := k.Get(q.State, string(key[len(leasePrefix):]))
		if err != nil {
			bad = err
			return false
		}
		sum += l.Remaining()
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	bal, err := k.bank.Balance(q.State, k.escrow)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.escrow, bal, sum, "the leases' remainders")
}

// checkLeases: every lease's books add up (drawn + refunded ≤ locked, and
// locked is the price of its paid-up time), a closed lease holds nothing
// and is in no active index, an active one is indexed, and the counts of
// active leases (per listing and in all) match.
func (k *Keeper) checkLeases(q module.Query) module.Finding {
	var detail string
	var active uint64
	perService := map[string]uint64{}
	err := q.State.Iterate(leasePrefix, false, func(key, _ []byte) bool {
		l, err := k.Get(q.State, string(key[len(leasePrefix):]))
		if err != nil {
			detail = err.Error()
			return false
		}
		cost, _ := Cost(l.Price, l.EndMs-l.StartMs)
		indexed, err := q.State.Get(keyActive(l.ID))
		if err != nil {
			detail = err.Error()
			return false
		}
		switch {
		case l.Drawn > l.Locked || l.Refunded > l.Locked-l.Drawn:
			detail = fmt.Sprintf("lease %s drew %s and refunded %s of %s locked", l.ID, l.Drawn, l.Refunded, l.Locked)
		case l.Locked != cost:
			detail = fmt.Sprintf("lease %s locked %s, its paid-up time costs %s", l.ID, l.Locked, cost)
		case l.Status != StatusActive && l.Remaining() != 0:
			detail = fmt.Sprintf("closed lease %s still holds %s", l.ID, l.Remaining())
		case (l.Status == StatusActive) != (indexed != nil):
			detail = fmt.Sprintf("lease %s is %s but the active index says %v", l.ID, StatusName(l.Status), indexed != nil)
		}
		if l.Status == StatusActive {
			active++
			perService[l.Service]++
		}
		return detail == ""
	})
	if err != nil {
		detail = err.Error()
	}
	if detail == "" {
		n, err := getUint(q.State, keyCount)
		switch {
		case err != nil:
			detail = err.Error()
		case n != active:
			detail = fmt.Sprintf("%d active leases counted, %d found", n, active)
		}
	}
	if detail == "" {
		err := q.State.Iterate(livePrefix, false, func(key, val []byte) bool {
			svc := string(key[len(livePrefix):])
			n, err := getUint(q.State, key)
			if err != nil {
				detail = err.Error()
			} else if n != perService[svc] {
				detail = fmt.Sprintf("listing %s counts %d live leases, %d found", svc, n, perService[svc])
			}
			delete(perService, svc)
			return detail == ""
		})
		if err != nil {
			detail = err.Error()
		}
		for svc, n := range perService {
			if detail == "" {
				detail = fmt.Sprintf("listing %s has %d active leases but no live count", svc, n)
			}
		}
	}
	if detail != "" {
		return module.Finding{Broken: true, Detail: detail}
	}
	return module.Finding{Detail: fmt.Sprintf("%d active leases; every lease's books add up", active)}
}
