package staking

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "staking/bonded", Check: k.checkBonded},
		{Name: "staking/operators", Check: k.checkOperators},
	}
}

// checkBonded: staking.bonded holds every delegation and every unbonding
// entry.
func (k *Keeper) checkBonded(q module.Query) module.Finding {
	var sum coin.Amount
	n := 0
	var bad error
	for _, prefix := range [][]byte{DelegationPrefix, UnbondingPrefix} {
		err := q.State.Iterate(prefix, false, func(_, v []byte) bool {
			if len(v) != 8 {
				bad = fmt.Errorf("corrupt amount %x", v)
				return false
			}
			n++
			sum, bad = sum.Add(coin.Amount(beUint(v)))
			return bad == nil
		})
		if err == nil {
			err = bad
		}
		if err != nil {
			return module.Finding{Broken: true, Detail: err.Error()}
		}
	}
	bal, err := k.bank.Balance(q.State, k.bonded)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.bonded, bal, sum, fmt.Sprintf("%d delegations and unbonding entries", n))
}

// checkOperators: each operator's bonded total is the sum of its
// delegations.
func (k *Keeper) checkOperators(q module.Query) module.Finding {
	ops, bad := 0, 0
	first := ""
	err := k.eachOperator(q.State, func(a address.Address, o *Operator) error {
		ops++
		var sum coin.Amount
		err := k.eachDelegation(q.State, a, func(_ address.Address, amt coin.Amount) error {
			sum += amt
			return nil
		})
		if err != nil {
			return err
		}
		if sum != o.Bonded {
			bad++
			if first == "" {
				first = fmt.Sprintf("; first: %s bonded %s, delegations %s", a, o.Bonded, sum)
			}
		}
		return nil
	})
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Finding{Broken: bad > 0, Detail: fmt.Sprintf("%d operators, %d whose bonded total differs from their delegations%s", ops, bad, first),
		Figures: map[string]string{"operators": fmt.Sprint(ops), "mismatched": fmt.Sprint(bad)}}
}
