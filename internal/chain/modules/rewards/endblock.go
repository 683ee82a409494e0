package rewards

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// EndBlock implements module.EndBlocker: it mints the block's reward and
// shares it (SplitReward), and at the last block of an epoch pays the
// epoch's miner and staker pots.
func (k *Keeper) EndBlock(ctx *module.Context) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	ep, err := k.CurrentEpoch(ctx.KV)
	if err != nil {
		return err
	}
	tot, err := k.ReadTotals(ctx.KV)
	if err != nil {
		return err
	}
	if r := BlockReward(p, ctx.Height); r > 0 {
		s := SplitReward(p, r)
		toTreasury := s.Treasury
		if ctx.Proposer.IsZero() {
			toTreasury += s.Validators // no proposer known: nobody to pay
		} else if err := k.bank.Mint(ctx.KV, ctx.Proposer, s.Validators); err != nil {
			return err
		} else {
			tot.Validators += s.Validators
		}
		if err := k.bank.Mint(ctx.KV, k.pending, s.Miners+s.Stakers); err != nil {
			return err
		}
		if err := k.bank.Mint(ctx.KV, k.treasury, toTreasury); err != nil {
			return err
		}
		ep.MinerPot += s.Miners
		ep.StakerPot += s.Stakers
		tot.Issued += r
		tot.Treasury += toTreasury
	}
	if EpochEnds(p, ctx.Height) {
		if err := k.payEpoch(ctx, p, &ep, &tot); err != nil {
			return err
		}
	}
	if err := write(ctx.KV, keyEpoch, ep); err != nil {
		return err
	}
	return write(ctx.KV, keyTotals, tot)
}

// payEpoch pays the miner pot by work and the staker pot through the
// staking module; what neither pays goes to the treasury. The epoch's work
// records are cleared.
func (k *Keeper) payEpoch(ctx *module.Context, p Params, ep *Epoch, tot *Totals) error {
	var (
		miners []address.Address
		work   []Work
		keys   [][]byte
	)
	err := ctx.KV.Iterate(WorkPrefix, false, func(key, _ []byte) bool {
		keys = append(keys, append([]byte(nil), key...))
		return true
	})
	if err != nil {
		return err
	}
	for _, key := range keys {
		a, err := address.FromBytes(key[len(WorkPrefix):])
		if err != nil {
			return fmt.Errorf("rewards: corrupt work key %x", key)
		}
		w, err := k.WorkOf(ctx.KV, a)
		if err != nil {
			return err
		}
		miners, work = append(miners, a), append(work, w)
		ctx.KV.Delete(key)
	}
	pay, unpaid := MinerRewards(ep.MinerPot, work, p.WorkCapBps)
	for i, amt := range pay {
		if amt == 0 {
			continue
		}
		to, err := k.route(ctx.KV, miners[i], 0, amt)
		if err != nil {
			return err
		}
		if err := k.bank.Send(ctx.KV, k.pending, to, amt); err != nil {
			return err
		}
		ctx.Touch(miners[i])
		tot.Miners += amt
	}
	var paid coin.Amount
	if k.staking != nil && ep.StakerPot > 0 {
		if paid, err = k.staking.DistributeRewards(ctx, k.pending, ep.StakerPot); err != nil {
			return err
		}
		if paid > ep.StakerPot {
			return fmt.Errorf("rewards: staking paid %s of a %s pot", paid, ep.StakerPot)
		}
	}
	tot.Stakers += paid
	rest := unpaid + ep.StakerPot - paid
	if rest > 0 {
		if err := k.bank.Send(ctx.KV, k.pending, k.treasury, rest); err != nil {
			return err
		}
		tot.Treasury += rest
	}
	*ep = Epoch{}
	return nil
}
