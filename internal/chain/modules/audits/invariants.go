package audits

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "audits/held", Check: k.checkHeld},
		{Name: "audits/bonds", Check: k.checkBonds},
	}
}

// checkHeld: audits.held holds the pay of every check still open, and
// nothing else (a confirmed fraud's slashed stake passes through it within
// its transaction).
func (k *Keeper) checkHeld(q module.Query) module.Finding {
	var sum coin.Amount
	n := 0
	var ferr error
	err := q.State.Iterate(CheckPrefix, false, func(key, val []byte) bool {
		c, err := decode[Check](key, val)
		if err != nil {
			ferr = err
			return false
		}
		if held(c.Status) {
			n++
			sum, ferr = sum.Add(c.Amount)
		}
		return ferr == nil
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	bal, err := k.bank.Balance(q.State, k.held)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.held, bal, sum, fmt.Sprintf("the pay of %d open checks", n))
}

// checkBonds: audits.bonds holds every verifier's bond.
func (k *Keeper) checkBonds(q module.Query) module.Finding {
	var sum coin.Amount
	n := 0
	var ferr error
	err := q.State.Iterate(VerifierPrefix, false, func(key, val []byte) bool {
		v, err := decode[Verifier](key, val)
		if err != nil {
			ferr = err
			return false
		}
		n++
		sum, ferr = sum.Add(v.Bond)
		return ferr == nil
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	bal, err := k.bank.Balance(q.State, k.bonds)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.bonds, bal, sum, fmt.Sprintf("the bonds of %d verifiers", n))
}
