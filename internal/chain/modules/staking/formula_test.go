package staking

import (
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

func TestStakerRewardsByHand(t *testing.T) {
	// Pot 1,000; operator 0 bonds 300 (stakers 100 and 200, 10%
	// commission), operator 1 bonds 100 (one staker, 0%), operator 2 none.
	// Shares 750 and 250; commission 75; stakers of 0 share 675 by
	// 1 : 2 → 225 and 450; operator 1's staker 250.
	out := StakerRewards(1_000, []OperatorStake{
		{Bonded: 300, CommissionBps: 1000, Delegations: []coin.Amount{100, 200}},
		{Bonded: 100, CommissionBps: 0, Delegations: []coin.Amount{100}},
		{Bonded: 0, CommissionBps: 1000},
	})
	if out.Commission[0] != 75 || out.Commission[1] != 0 || out.Delegators[0][0] != 225 || out.Delegators[0][1] != 450 ||
		out.Delegators[1][0] != 250 || out.Paid != 1_000 {
		t.Fatalf("%+v", out)
	}
	// Rounding: pot 10 over bonds 1 : 1 : 1 → 3 each, 1 left unpaid.
	out = StakerRewards(10, []OperatorStake{{Bonded: 1, Delegations: []coin.Amount{1}}, {Bonded: 1, Delegations: []coin.Amount{1}}, {Bonded: 1, Delegations: []coin.Amount{1}}})
	if out.Paid != 9 {
		t.Fatalf("paid %s of 10, want 9", out.Paid)
	}
	if out := StakerRewards(10, nil); out.Paid != 0 {
		t.Fatalf("paid %s with nothing bonded", out.Paid)
	}
}

func TestSlashCut(t *testing.T) {
	if got := SlashCut(1_999, 500); got != 99 { // 5% of 1,999 = 99.95, rounded down
		t.Fatalf("%s", got)
	}
}
