package jobs

import (
	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// Audits is what the module needs of the spot checks (the audits
// module): at settlement it may take the miner's pay into its own account
// until the job is known not to be checked, or the check is done. Hold
// returns where the pay goes: payTo when the job is not held, else the
// audits module's account, having recorded the pay as owed to payTo.
type Audits interface {
	Hold(ctx *module.Context, j *Job, r *Receipt, payTo address.Address, amount coin.Amount) (address.Address, error)
}

// SetAudits connects the audits module (modules.New does, once).
func (k *Keeper) SetAudits(a Audits) { k.audits = a }

// payee is where a settling job's miner pay goes: payTo, unless the
// audits module holds it for a spot check. Without an audits module, or
// with nothing to pay, nothing changes.
func (k *Keeper) payee(ctx *module.Context, j *Job, r *Receipt, payTo address.Address, amount coin.Amount) (address.Address, error) {
	if k.audits == nil || amount == 0 {
		return payTo, nil
	}
	return k.audits.Hold(ctx, j, r, payTo, amount)
}
