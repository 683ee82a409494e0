package miners

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{{Name: "miners/stake", Check: k.checkStake}}
}

// checkStake: the stake account holds the sum of every registered
// miner's stake (unbonding ones keep theirs until it is returned).
func (k *Keeper) checkStake(q module.Query) module.Finding {
	var sum coin.Amount
	n := 0
	err := each(q.State, func(m *Miner) error {
		var err error
		sum, err = sum.Add(m.Stake)
		n++
		return err
	})
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	bal, err := k.bank.Balance(q.State, k.stake)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.stake, bal, sum, fmt.Sprintf("the stakes of %d miners", n))
}
