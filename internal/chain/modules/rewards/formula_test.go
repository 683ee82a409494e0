package rewards

import (
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

func TestBlockRewardHalves(t *testing.T) {
	p := Params{InitialReward: 3 * coin.Unit, HalvingBlocks: 10}
	for _, c := range []struct {
		h    int64
		want coin.Amount
	}{{0, 0}, {1, 3_000_000}, {10, 3_000_000}, {11, 1_500_000}, {21, 750_000}, {31, 375_000}, {10*64 + 1, 0}} {
		if got := BlockReward(p, c.h); got != c.want {
			t.Errorf("height %d: %s, want %s", c.h, got, c.want)
		}
	}
}

func TestSplitRewardGivesRoundingToTreasury(t *testing.T) {
	p := DefaultParams() // 20 / 40 / 30, treasury the rest
	s := SplitReward(p, 1_000_003)
	// 200,000.6 → 200,000; 400,001.2 → 400,001; 300,000.9 → 300,000.
	want := RewardSplit{Validators: 200_000, Miners: 400_001, Stakers: 300_000, Treasury: 100_002}
	if s != want {
		t.Fatalf("%+v, want %+v", s, want)
	}
}

func TestSplitFees(t *testing.T) {
	s := SplitFees(1_001, 5000, 2000)
	// 500.5 → 500 burned; 200.2 → 200 to the treasury; 301 to the proposer.
	if s != (FeeSplit{Burn: 500, Treasury: 200, Proposer: 301}) {
		t.Fatalf("%+v", s)
	}
}

func TestMinerRewardsByWorkWithCap(t *testing.T) {
	// Pot 1,000 over tokens 1 : 3 : 0 → 250, 750, 0; the second capped
	// at 2× its fees of 100 → 200. Unpaid: 1,000 − 250 − 200 = 550.
	pay, unpaid := MinerRewards(1_000, []Work{{Tokens: 10, Fees: 500}, {Tokens: 30, Fees: 100}, {Tokens: 0, Fees: 0}}, 20_000)
	if pay[0] != 250 || pay[1] != 200 || pay[2] != 0 || unpaid != 550 {
		t.Fatalf("pay %v unpaid %s", pay, unpaid)
	}
	// No work: nothing paid.
	if pay, unpaid := MinerRewards(1_000, nil, 10_000); len(pay) != 0 || unpaid != 1_000 {
		t.Fatalf("idle epoch: pay %v unpaid %s", pay, unpaid)
	}
}

func TestParamsValidate(t *testing.T) {
	bad := DefaultParams()
	bad.MinerBps = 9000
	if bad.Validate() == nil {
		t.Error("shares above 100% accepted")
	}
	bad = DefaultParams()
	bad.EpochBlocks = 0
	if bad.Validate() == nil {
		t.Error("epoch of 0 blocks accepted")
	}
	if err := DefaultParams().Validate(); err != nil {
		t.Error(err)
	}
}
