package economics

import (
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
)

func rules() Rules {
	p := rewards.DefaultParams()
	p.EpochBlocks, p.HalvingBlocks = 10, 25
	return Rules{Rewards: p, BurnBps: 5000, TreasuryBps: 2000}
}

// StepN must give exactly the sums of single Steps, including across
// halvings and epoch ends (where it falls back to Step).
func TestStepNEqualsSteps(t *testing.T) {
	a, _ := New(rules())
	b, _ := New(rules())
	for i, n := range []int64{3, 5, 1, 9, 4, 7, 12, 2, 30} {
		blk := Block{Fees: coin.Amount(1001 * (i + 1))}
		for range n {
			a.Step(blk)
		}
		b.StepN(blk, n)
		if a.T != b.T {
			t.Fatalf("after run %d: Step %+v, StepN %+v", i, a.T, b.T)
		}
	}
}

// A block by hand: reward 3 AITBC → 0.6 proposer, 1.2 miners, 0.9
// stakers, 0.3 treasury; fees 1,001 → 500 burned, 200 treasury, 301
// proposer. At the epoch's end, with no work and no stake, both pots go
// to the treasury.
func TestStepByHand(t *testing.T) {
	s, _ := New(rules())
	s.Step(Block{Fees: 1001})
	want := Totals{Height: 1, Minted: 3_000_000, Burned: 500, Proposer: 600_000 + 301, Treasury: 300_000 + 200, MinerPot: 1_200_000, StakerPot: 900_000}
	if s.T != want {
		t.Fatalf("%+v, want %+v", s.T, want)
	}
	for range 9 {
		s.Step(Block{})
	}
	if s.T.MinerPot != 0 || s.T.StakerPot != 0 || s.T.Treasury != 10*300_000+200+10*2_100_000 {
		t.Fatalf("after the epoch: %+v", s.T)
	}
}

func TestProjectionIsConsistent(t *testing.T) {
	l := DefaultLoad()
	l.Years = 2
	years, err := Project(Rules{Rewards: rewards.DefaultParams(), BurnBps: 5000, TreasuryBps: 2000}, l)
	if err != nil {
		t.Fatal(err)
	}
	// Year one: 15,768,000 two-second blocks of 3 AITBC.
	if years[0].Minted != 15_768_000*3*coin.Unit {
		t.Errorf("year 1 minted %s", years[0].Minted)
	}
	supply := l.Genesis
	for _, y := range years {
		supply = supply + y.Minted - y.Burned
		if y.Supply != supply || y.Burned == 0 || y.StakerYieldBps <= 0 || y.MinerRewards == 0 {
			t.Errorf("year %d: %+v (supply want %s)", y.Year, y, supply)
		}
	}
	l.Years = 0
	if _, err := Project(rules(), l); err == nil {
		t.Error("a projection of 0 years accepted")
	}
}
