package rewards

import (
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// The formulas of docs/ECONOMICS.md, as pure functions: the chain runs
// them in EndBlock and the application's fee split, and the simulator
// (internal/economics) runs the very same ones, so that a projection and
// the chain agree to the base unit. Every division rounds down; what
// rounding leaves over goes where each function says.

// BlockReward is the issuance of block height (the first block is 1):
// InitialReward, halved every HalvingBlocks blocks (a right shift, so it
// reaches zero after at most 64 halvings).
func BlockReward(p Params, height int64) coin.Amount {
	if height < 1 || p.HalvingBlocks < 1 {
		return 0
	}
	n := (height - 1) / p.HalvingBlocks
	if n >= 64 {
		return 0
	}
	return p.InitialReward >> uint(n)
}

// RewardSplit is how one block's reward is shared.
type RewardSplit struct {
	Validators coin.Amount // to the block's proposer
	Miners     coin.Amount // into the epoch's miner pot
	Stakers    coin.Amount // into the epoch's staker pot
	Treasury   coin.Amount // the rest, rounding included
}

// SplitReward shares a block's reward r by the parameters' basis points;
// the treasury gets what is left.
func SplitReward(p Params, r coin.Amount) RewardSplit {
	s := RewardSplit{
		Validators: r.MulDiv(p.ValidatorBps, 10_000),
		Miners:     r.MulDiv(p.MinerBps, 10_000),
		Stakers:    r.MulDiv(p.StakerBps, 10_000),
	}
	s.Treasury = r - s.Validators - s.Miners - s.Stakers
	return s
}

// FeeSplit is how a block's fees (transaction fees and protocol fees)
// are shared.
type FeeSplit struct {
	Burn     coin.Amount
	Treasury coin.Amount
	Proposer coin.Amount // the rest, rounding included
}

// SplitFees shares a block's fees: burnBps burned, treasuryBps to the
// treasury, the rest to the block's proposer.
func SplitFees(total coin.Amount, burnBps, treasuryBps uint64) FeeSplit {
	s := FeeSplit{Burn: total.MulDiv(burnBps, 10_000), Treasury: total.MulDiv(treasuryBps, 10_000)}
	s.Proposer = total - s.Burn - s.Treasury
	return s
}

// Work is what one miner did in an epoch: output tokens of its settled
// jobs, and the protocol fees those settlements paid.
type Work struct {
	Tokens uint64
	Fees   coin.Amount
}

// MinerRewards shares an epoch's miner pot by verified work: each miner's
// share of the tokens, capped at capBps of the protocol fees its jobs
// paid (so that work a miner pays itself for never earns more than it
// cost). pay[i] is miner i's reward; unpaid (the caps and rounding) goes
// to the treasury. With no work at all, everything is unpaid.
func MinerRewards(pot coin.Amount, work []Work, capBps uint64) (pay []coin.Amount, unpaid coin.Amount) {
	pay = make([]coin.Amount, len(work))
	var total uint64
	for _, w := range work {
		total += w.Tokens
	}
	unpaid = pot
	if total == 0 {
		return pay, unpaid
	}
	for i, w := range work {
		pay[i] = min(pot.MulDiv(w.Tokens, total), w.Fees.MulDiv(capBps, 10_000))
		unpaid -= pay[i]
	}
	return pay, unpaid
}

// EpochEnds reports whether height is the last block of an epoch (epochs
// are EpochBlocks long, the first ending at height EpochBlocks).
func EpochEnds(p Params, height int64) bool {
	return p.EpochBlocks > 0 && height > 0 && height%p.EpochBlocks == 0
}

// EpochEnds reports whether height ends an epoch under the committed
// parameters; with epochs off (EpochBlocks 0) every block does, so that
// what the pools module accrues is still split each block.
func (k *Keeper) EpochEnds(r state.Reader, height int64) (bool, error) {
	p, err := k.Params(r)
	if err != nil {
		return false, err
	}
	return p.EpochBlocks <= 0 || EpochEnds(p, height), nil
}
