// Package economics (in the chain's tree, so that the chain's own tests
// may run it beside the application) replays the chain's money rules outside the chain: a
// block-by-block simulator (Sim) that runs the very formulas the rewards,
// staking and jobs modules and the application's fee split run
// (rewards.BlockReward, SplitReward, SplitFees, MinerRewards,
// staking.StakerRewards, jobs.Split), and a projection (Project) that
// drives it with a steady load for years, for `aitbc economics simulate`
// and the tables of docs/ECONOMICS.md. A test runs the real chain and the
// simulator side by side and requires them to agree to the base unit.
package economics

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
)

// DefaultRules are the default genesis parameters: the application's fee
// split and the rewards module's schedule.
func DefaultRules() Rules {
	p := app.DefaultParams()
	return Rules{Rewards: rewards.DefaultParams(), BurnBps: p.BurnBps, TreasuryBps: p.TreasuryBps}
}

// MinFee is the default genesis minimum transaction fee.
func MinFee() coin.Amount { return app.DefaultParams().MinFee }

// Rules are the chain parameters the simulator needs.
type Rules struct {
	Rewards     rewards.Params
	BurnBps     uint64 // app params: share of a block's fees burned
	TreasuryBps uint64 // app params: share of a block's fees to the treasury
}

// Block is what happened in one block that the money rules depend on.
type Block struct {
	// Fees is every fee the block collected: transaction fees and the
	// protocol fees of the jobs settled in it.
	Fees coin.Amount
	// Work is the verified work of the jobs settled in the block, by
	// miner index (tokens out and protocol fees paid).
	Work map[int]rewards.Work
	// WorkAt is more work, as a list (the projection's form).
	WorkAt []MinerWork
	// NoProposer: the block had no known proposer (its share goes to the
	// treasury, as on chain).
	NoProposer bool
}

// MinerWork is one miner's work.
type MinerWork struct {
	Miner int
	Work  rewards.Work
}

// Totals are the simulator's running figures since genesis.
type Totals struct {
	Height     int64
	Minted     coin.Amount // block rewards issued
	Burned     coin.Amount // the burned share of fees
	Proposer   coin.Amount // block rewards' validator share + fees' proposer share
	Treasury   coin.Amount // the treasury's balance
	MinerPot   coin.Amount // this epoch's pots, not yet paid
	StakerPot  coin.Amount
	Miners     coin.Amount // work rewards paid to miners
	Commission coin.Amount // operators' commission on staker rewards
	Stakers    coin.Amount // paid to stakers
}

// Sim is the block-by-block simulator. Miners are numbered 0..n−1 in the
// order of their addresses (the chain pays in address order); operators
// with stake are given by SetStake.
type Sim struct {
	R     Rules
	T     Totals
	work  []rewards.Work // this epoch's, by miner index
	ops   []staking.OperatorStake
	opIdx []int // operator i is miner opIdx[i]
	// Paid by miner index (work rewards) and by operator (commission)
	// and its stakers, since genesis.
	MinerPaid      map[int]coin.Amount
	CommissionPaid map[int]coin.Amount
	StakerPaid     map[int][]coin.Amount

	// The last block's splits, reused while the reward and fees repeat.
	lastReward, lastFees coin.Amount
	lastSplit            rewards.RewardSplit
	lastFeeSplit         rewards.FeeSplit
}

// New returns a simulator at genesis.
func New(r Rules) (*Sim, error) {
	if err := r.Rewards.Validate(); err != nil {
		return nil, err
	}
	if r.BurnBps+r.TreasuryBps > 10_000 {
		return nil, fmt.Errorf("economics: burn_bps %d + treasury_bps %d exceed 10000", r.BurnBps, r.TreasuryBps)
	}
	return &Sim{R: r, MinerPaid: map[int]coin.Amount{}, CommissionPaid: map[int]coin.Amount{},
		StakerPaid: map[int][]coin.Amount{}}, nil
}

// SetStake sets the bonded stake of the operators that earn staker
// rewards: miner[i] with its commission and its stakers' delegations.
// It applies from the next epoch payout on.
func (s *Sim) SetStake(miner []int, ops []staking.OperatorStake) {
	s.opIdx, s.ops = miner, ops
}

// Step applies one block, in the chain's order: the block's reward is
// minted and split (rewards' EndBlock), the epoch's pots are paid at its
// last block, then the block's fees are split (the application).
func (s *Sim) Step(b Block) {
	p := s.R.Rewards
	s.T.Height++
	h := s.T.Height
	for m, w := range b.Work {
		s.addWork(m, w)
	}
	for _, w := range b.WorkAt {
		s.addWork(w.Miner, w.Work)
	}
	if r := rewards.BlockReward(p, h); r > 0 {
		if r != s.lastReward {
			s.lastReward, s.lastSplit = r, rewards.SplitReward(p, r)
		}
		sp := s.lastSplit
		s.T.Minted += r
		if b.NoProposer {
			s.T.Treasury += sp.Validators
		} else {
			s.T.Proposer += sp.Validators
		}
		s.T.Treasury += sp.Treasury
		s.T.MinerPot += sp.Miners
		s.T.StakerPot += sp.Stakers
	}
	if rewards.EpochEnds(p, h) {
		s.payEpoch()
	}
	if b.Fees > 0 {
		if b.Fees != s.lastFees {
			s.lastFees, s.lastFeeSplit = b.Fees, rewards.SplitFees(b.Fees, s.R.BurnBps, s.R.TreasuryBps)
		}
		f := s.lastFeeSplit
		s.T.Burned += f.Burn
		s.T.Treasury += f.Treasury
		if b.NoProposer {
			s.T.Treasury += f.Proposer
		} else {
			s.T.Proposer += f.Proposer
		}
	}
}

func (s *Sim) addWork(m int, w rewards.Work) {
	for len(s.work) <= m {
		s.work = append(s.work, rewards.Work{})
	}
	s.work[m].Tokens += w.Tokens
	s.work[m].Fees += w.Fees
}

// StepN applies n blocks with the same fees and no work, none of them
// the last of an epoch and all with the same block reward (the caller
// checks): the sums of n Steps, in one.
func (s *Sim) StepN(b Block, n int64) {
	if n <= 0 {
		return
	}
	p := s.R.Rewards
	first, last := s.T.Height+1, s.T.Height+n
	sameEpoch := (first-1)/p.EpochBlocks == (last-1)/p.EpochBlocks && !rewards.EpochEnds(p, last)
	if b.Work != nil || b.WorkAt != nil || !sameEpoch || rewards.BlockReward(p, first) != rewards.BlockReward(p, last) {
		for range n {
			s.Step(b)
		}
		return
	}
	s.T.Height = last
	k := coin.Amount(n)
	if r := rewards.BlockReward(p, first); r > 0 {
		sp := rewards.SplitReward(p, r)
		s.T.Minted += k * r
		if b.NoProposer {
			s.T.Treasury += k * sp.Validators
		} else {
			s.T.Proposer += k * sp.Validators
		}
		s.T.Treasury += k * sp.Treasury
		s.T.MinerPot += k * sp.Miners
		s.T.StakerPot += k * sp.Stakers
	}
	if b.Fees > 0 {
		f := rewards.SplitFees(b.Fees, s.R.BurnBps, s.R.TreasuryBps)
		s.T.Burned += k * f.Burn
		s.T.Treasury += k * f.Treasury
		if b.NoProposer {
			s.T.Treasury += k * f.Proposer
		} else {
			s.T.Proposer += k * f.Proposer
		}
	}
}

func (s *Sim) payEpoch() {
	p := s.R.Rewards
	// Miners by index (address) order; one without work is paid nothing,
	// as on chain, where it has no work record.
	pay, unpaid := rewards.MinerRewards(s.T.MinerPot, s.work, p.WorkCapBps)
	for m, a := range pay {
		if a > 0 {
			s.MinerPaid[m] += a
			s.T.Miners += a
		}
	}
	out := staking.StakerRewards(s.T.StakerPot, s.ops)
	for i := range s.ops {
		m := s.opIdx[i]
		s.CommissionPaid[m] += out.Commission[i]
		s.T.Commission += out.Commission[i]
		if len(s.StakerPaid[m]) < len(out.Delegators[i]) {
			s.StakerPaid[m] = append(s.StakerPaid[m], make([]coin.Amount, len(out.Delegators[i])-len(s.StakerPaid[m]))...)
		}
		for j, a := range out.Delegators[i] {
			s.StakerPaid[m][j] += a
			s.T.Stakers += a
		}
	}
	s.T.Treasury += unpaid + s.T.StakerPot - out.Paid
	s.T.MinerPot, s.T.StakerPot = 0, 0
	clear(s.work)
}
