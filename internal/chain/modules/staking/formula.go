package staking

import "github.com/aitbc/aitbc/internal/chain/coin"

// OperatorStake is one operator's part in an epoch's staker pot: its
// bonded stake, its commission, and each of its stakers' delegations (in
// delegator address order; they sum to Bonded).
type OperatorStake struct {
	Bonded        coin.Amount
	CommissionBps uint64
	Delegations   []coin.Amount
}

// StakerPayout is how a staker pot is paid.
type StakerPayout struct {
	Commission []coin.Amount   // Commission[o]: to operator o
	Delegators [][]coin.Amount // Delegators[o][i]: to operator o's staker i
	Paid       coin.Amount     // all of the above; the pot less Paid goes to the treasury
}

// StakerRewards shares pot between operators by bonded stake; each takes
// its commission and the rest is shared between its stakers by stake:
//
//	share_o      = pot × bonded_o / Σ bonded
//	commission_o = share_o × commission_bps_o / 10000
//	pay_o,i      = (share_o − commission_o) × stake_o,i / bonded_o
//
// all rounded down. With nothing bonded nothing is paid.
func StakerRewards(pot coin.Amount, ops []OperatorStake) StakerPayout {
	out := StakerPayout{Commission: make([]coin.Amount, len(ops)), Delegators: make([][]coin.Amount, len(ops))}
	var total coin.Amount
	for _, o := range ops {
		total += o.Bonded
	}
	for i, o := range ops {
		out.Delegators[i] = make([]coin.Amount, len(o.Delegations))
		if total == 0 || o.Bonded == 0 {
			continue
		}
		share := pot.MulDiv(uint64(o.Bonded), uint64(total))
		comm := share.MulDiv(o.CommissionBps, 10_000)
		rest := share - comm
		out.Commission[i] = comm
		out.Paid += comm
		for j, d := range o.Delegations {
			p := rest.MulDiv(uint64(d), uint64(o.Bonded))
			out.Delegators[i][j] = p
			out.Paid += p
		}
	}
	return out
}

// SlashCut is what a slash of bps takes from a stake.
func SlashCut(stake coin.Amount, bps uint64) coin.Amount { return stake.MulDiv(bps, 10_000) }
