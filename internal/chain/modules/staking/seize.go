package staking

import (
	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// SlashTo cuts op's stake exactly as Slash does, but pays the cut to the
// account to instead of burning it: the audits module takes a cheating
// miner's slashed stake into its own account and splits it between the
// customer, the verifiers and the burn (docs/ECONOMICS.md, "Spot checks").
func (k *Keeper) SlashTo(ctx *module.Context, op address.Address, bps uint64, to address.Address) (coin.Amount, error) {
	return k.slash(ctx, op, bps, &to)
}
