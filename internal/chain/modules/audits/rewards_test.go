package audits_test

import (
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
)

// work is a miner's work this epoch, as the rewards module counts it.
func (c *chain) work(a address.Address) rewards.Work {
	c.t.Helper()
	var w rewards.Work
	if err := c.app.Committed(func(q module.Query) error {
		var err error
		w, err = keeper[*rewards.Keeper](c).WorkOf(q.State, a)
		return err
	}); err != nil {
		c.t.Fatal(err)
	}
	return w
}

// noEpochEnded fails the test when a rewards epoch (60 blocks) ended
// during it: the work counts below would then have been paid and reset.
func (c *chain) noEpochEnded() {
	c.t.Helper()
	if h, _ := c.app.Height(); h >= rewards.DefaultParams().EpochBlocks {
		c.t.Fatalf("the test ran to height %d, past the first rewards epoch", h)
	}
}

// TestHeldJobCountsTowardEpochRewardsOnlyOnceItPasses: a job held for a
// spot check adds nothing to its miner's work this epoch until the
// verifier passes it; then its tokens and protocol fee count.
func TestHeldJobCountsTowardEpochRewardsOnlyOnceItPasses(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(0, v1, v2)
	id := jobID(1)
	c.settle(c.job(id, tokens, true))
	if w := c.work(miner.addr); w != (rewards.Work{}) {
		t.Fatalf("a held job counts %+v before its check", w)
	}
	ch := c.check(id)
	c.ok(keyOf(ch.VerifierAddr()), audits.NewReportMsg(id, true, nil, ""))
	want := rewards.Work{Tokens: tokens, Fees: jobs.DefaultParams().Fee(price)}
	if w := c.work(miner.addr); w != want || want.Fees == 0 {
		t.Fatalf("after the pass the miner's work is %+v, want %+v", w, want)
	}
	// A job with spot checks off counts at settlement, as before.
	c.settle(c.job(jobID(2), tokens, false))
	want.Tokens, want.Fees = 2*tokens, 2*want.Fees
	if w := c.work(miner.addr); w != want {
		t.Fatalf("with an unchecked job the work is %+v, want %+v", w, want)
	}
	c.noEpochEnded()
	c.conserved()
}

// TestConfirmedFraudNeverCountsTowardEpochRewards: a job whose fraud is
// confirmed adds nothing to its miner's work, while an honest job of the
// same miner, passed, does.
func TestConfirmedFraudNeverCountsTowardEpochRewards(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(50*coin.Unit, v1, v2, v3)
	cheat, honest := jobID(1), jobID(2)
	c.settle(c.job(cheat, tokens, true))
	c.settle(c.job(honest, tokens+40, true))
	first := keyOf(c.check(cheat).VerifierAddr())
	c.ok(first, audits.NewReportMsg(cheat, false, []byte{1}, "commitments differ"))
	c.ok(keyOf(c.check(cheat).SecondAddr()), audits.NewReportMsg(cheat, false, []byte{2}, "agrees"))
	if s := c.check(cheat).Status; s != audits.StatusConfirmed {
		t.Fatalf("cheat's check %s", audits.StatusName(s))
	}
	if w := c.work(miner.addr); w != (rewards.Work{}) {
		t.Fatalf("a confirmed fraud counts %+v", w)
	}
	c.ok(keyOf(c.check(honest).VerifierAddr()), audits.NewReportMsg(honest, true, nil, ""))
	want := rewards.Work{Tokens: tokens + 40, Fees: jobs.DefaultParams().Fee(jobs.PriceFor(tokens+40, pricePer1k))}
	if w := c.work(miner.addr); w != want {
		t.Fatalf("after the honest job's pass the work is %+v, want %+v (the fraud's left out)", w, want)
	}
	c.noEpochEnded()
	c.conserved()
}
