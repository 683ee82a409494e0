package rewards

import (
	"github.com/aitbc/aitbc/internal/chain/module"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "rewards/pending", Check: k.checkPending},
		{Name: "rewards/treasury", Check: k.checkTreasury},
	}
}

// checkPending: rewards.pending holds the current epoch's miner and
// staker pots, and nothing else.
func (k *Keeper) checkPending(q module.Query) module.Finding {
	ep, err := k.CurrentEpoch(q.State)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	bal, err := k.bank.Balance(q.State, k.pending)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.pending, bal, ep.MinerPot+ep.StakerPot, "this epoch's miner and staker pots")
}

// checkTreasury: the treasury holds what rewards and the fee split paid
// into it, less what it spent (treasury/spend).
func (k *Keeper) checkTreasury(q module.Query) module.Finding {
	t, err := k.ReadTotals(q.State)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	spent, err := k.TreasurySpent(q.State)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	if spent > t.Treasury+t.Fees {
		return module.Finding{Broken: true, Detail: "the treasury spent " + spent.String() + " AITBC, more than was paid into it"}
	}
	bal, err := k.bank.Balance(q.State, k.treasury)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.treasury, bal, t.Treasury+t.Fees-spent, "rewards and fee shares paid to the treasury less its spending")
}
