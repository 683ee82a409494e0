package audits_test

import (
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
)

// everyJob draws every attested job for a check.
func everyJob() audits.Params {
	p := audits.DefaultParams()
	p.SpotCheckBps = 10_000
	p.CheckWindowBlocks = 5
	return p
}

const tokens = 150 // 0.3 AITBC at 2 AITBC per 1k

var price = jobs.PriceFor(tokens, pricePer1k)

func TestSpotChecksOffPayTheMinerAtSettlement(t *testing.T) {
	c := newChain(t, audits.DefaultParams())
	c.setup(0, v1, v2)
	id := jobID(1)
	raw := c.job(id, tokens, true)
	before := c.balance(miner.addr)
	c.settle(raw)
	if got := c.balance(miner.addr); got != before+price {
		t.Fatalf("miner %s after settlement, want %s + %s", got, before, price)
	}
	if c.check(id) != nil || c.balance(address.Module(audits.HeldAccount)) != 0 {
		t.Fatal("spot checks off, yet a check or held pay")
	}
	c.conserved()
}

func TestUnattestedJobsAreNeverHeld(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(0, v1, v2)
	id := jobID(1)
	raw := c.job(id, tokens, false)
	before := c.balance(miner.addr)
	c.settle(raw)
	if got := c.balance(miner.addr); got != before+price || c.check(id) != nil {
		t.Fatalf("an unattested job was held: miner %s, want %s", got, before+price)
	}
}

func TestJobNotDrawnIsPaidInTheBlockThatSettledIt(t *testing.T) {
	p := everyJob()
	p.SpotCheckBps = 5000
	c := newChain(t, p)
	c.setup(0, v1, v2)
	id := jobID(7)
	raw := c.job(id, tokens, true)
	// The settling block's hash decides; pick one that does not draw it.
	next := c.height + 1
	var h []byte
	for i := byte(0); ; i++ {
		h = []byte{i, 1, 2, 3}
		if !audits.Selected(h, id, p.SpotCheckBps) {
			break
		}
	}
	c.hash = func(height int64) []byte {
		if height == next {
			return h
		}
		return defaultHash(height)
	}
	before := c.balance(miner.addr)
	c.settle(raw)
	if got := c.balance(miner.addr); got != before+price {
		t.Fatalf("miner %s, want %s: a job not drawn is paid in its block", got, before+price)
	}
	if c.check(id) != nil || c.balance(address.Module(audits.HeldAccount)) != 0 {
		t.Fatal("a job not drawn left a check or held pay")
	}
	c.conserved()
}

// TestDataProcessingJobIsHeldWithoutAnAttestation: a deterministic kind
// (data processing, training) is checked by re-execution, so it is held
// and drawn like an attested job though it carries no attestation.
func TestDataProcessingJobIsHeldWithoutAnAttestation(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(0, v1, v2)
	id := jobID(1)
	raw := c.jobOf(id, "data-processing", tokens, false)
	before := c.balance(miner.addr)
	c.settle(raw)
	ch := c.check(id)
	if got := c.balance(miner.addr); got != before || ch == nil || ch.Status != audits.StatusAssigned || c.balance(heldAddr()) != price {
		t.Fatalf("a data-processing job was not held: miner %s (was %s), check %+v", got, before, ch)
	}
	c.ok(keyOf(ch.VerifierAddr()), audits.NewReportMsg(id, true, nil, ""))
	if got := c.balance(miner.addr); got != before+price-audits.DefaultParams().Fee(price) {
		t.Fatalf("miner %s after the pass", got)
	}
	c.conserved()
}

func TestHonestJobPassesItsCheckAndTheVerifierIsPaid(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(0, v1, v2, v3)
	id := jobID(1)
	raw := c.job(id, tokens, true)
	minerBefore := c.balance(miner.addr)
	c.settle(raw)
	if got := c.balance(miner.addr); got != minerBefore {
		t.Fatalf("a drawn job's pay reached the miner: %s", got)
	}
	if got := c.balance(address.Module(audits.HeldAccount)); got != price {
		t.Fatalf("held %s, want %s", got, price)
	}
	ch := c.check(id)
	if ch == nil || ch.Status != audits.StatusAssigned {
		t.Fatalf("check %+v, want assigned", ch)
	}
	vk := keyOf(ch.VerifierAddr())
	vBefore := c.balance(vk.addr)
	c.ok(vk, audits.NewReportMsg(id, true, nil, ""))
	checkFee := audits.DefaultParams().Fee(price)
	if got := c.balance(vk.addr); got != vBefore+checkFee-fee {
		t.Fatalf("verifier %s, want %s + fee %s - tx fee", got, vBefore, checkFee)
	}
	if got := c.balance(miner.addr); got != minerBefore+price-checkFee {
		t.Fatalf("miner %s, want %s + %s - %s", got, minerBefore, price, checkFee)
	}
	if ch := c.check(id); ch.Status != audits.StatusPassed || ch.Fees != checkFee {
		t.Fatalf("check %s fees %s", audits.StatusName(ch.Status), ch.Fees)
	}
	if r := c.minerRecord(miner.addr); r.Drawn != 1 || r.Passed != 1 || r.Frauds != 0 {
		t.Fatalf("miner record %+v", r)
	}
	if c.balance(address.Module(audits.HeldAccount)) != 0 {
		t.Fatal("pay left held")
	}
	c.conserved()
}

func TestCheatIsDisputedConfirmedAndSlashed(t *testing.T) {
	c := newChain(t, everyJob())
	const stake = 50 * coin.Unit
	c.setup(stake, v1, v2, v3)
	id := jobID(1)
	raw := c.job(id, tokens, true)
	c.settle(raw)
	first := keyOf(c.check(id).VerifierAddr())
	custBefore, minerBefore := c.balance(alice.addr), c.balance(miner.addr)
	burnedBefore := c.supply().Burned
	firstBefore := c.balance(first.addr)

	evidence := make([]byte, 32)
	evidence[0] = 0xee
	c.ok(first, audits.NewReportMsg(id, false, evidence, "top-k commitments of chunk 0 differ"))
	ch := c.check(id)
	if ch.Status != audits.StatusRechecking || ch.SecondAddr() == first.addr || ch.SecondAddr() == miner.addr || ch.SecondAddr() == alice.addr {
		t.Fatalf("after a fail: %s, second %s", audits.StatusName(ch.Status), ch.SecondAddr())
	}
	if o := c.operator(miner.addr); o.Disputes != 1 {
		t.Fatalf("miner's stake not frozen: %+v", o)
	}
	// A frozen stake cannot be withdrawn while the claim is checked.
	c.refused(miner, staking.NewUnstakeMsg(miner.addr, coin.Unit), staking.ErrInDispute)
	second := keyOf(ch.SecondAddr())
	secondBefore := c.balance(second.addr)
	c.ok(second, audits.NewReportMsg(id, false, evidence, "agrees: chunk 0 differs"))

	p := audits.DefaultParams()
	seized := coin.Amount(stake).MulDiv(p.SlashBps, 10_000)
	toCust := seized.MulDiv(p.SlashCustomerBps, 10_000)
	shares := seized.MulDiv(p.SlashVerifiersBps, 10_000)
	burned := seized - toCust - shares
	checkFee := p.Fee(price)
	ch = c.check(id)
	if ch.Status != audits.StatusConfirmed || ch.Slashed != seized || ch.Burned != burned {
		t.Fatalf("check %s slashed %s burned %s, want confirmed %s %s", audits.StatusName(ch.Status), ch.Slashed, ch.Burned, seized, burned)
	}
	if got, want := c.balance(alice.addr), custBefore+price-2*checkFee+toCust; got != want {
		t.Fatalf("customer %s, want %s", got, want)
	}
	if got, want := c.balance(first.addr), firstBefore-fee+checkFee+shares-shares/2; got != want {
		t.Fatalf("first verifier %s, want %s", got, want)
	}
	if got, want := c.balance(second.addr), secondBefore-fee+checkFee+shares/2; got != want {
		t.Fatalf("second verifier %s, want %s", got, want)
	}
	if got := c.balance(miner.addr) + fee; got != minerBefore+fee {
		t.Fatalf("miner %s: paid for a confirmed fraud", got)
	}
	if o := c.operator(miner.addr); o.Bonded != stake-seized || o.Disputes != 0 || o.Slashed != seized {
		t.Fatalf("miner's stake %+v, want %s bonded, unfrozen", o, stake-seized)
	}
	// Burned: the slash's burn and the two reports' burned halves of fees
	// (the refused unstake charged nothing).
	if got, want := c.supply().Burned, burnedBefore+burned+2*fee/2; got != want {
		t.Fatalf("burned %s, want %s", got, want)
	}
	if r := c.minerRecord(miner.addr); r.Frauds != 1 {
		t.Fatalf("miner record %+v", r)
	}
	if f := c.facts(miner.addr); f.DisputesLost != 1 {
		t.Fatalf("reputation facts %+v: the fraud is not counted", f)
	}
	if c.balance(address.Module(audits.HeldAccount)) != 0 {
		t.Fatal("audits.held not empty")
	}
	c.conserved()
}

func TestFalseClaimIsOverruledAndTheClaimantSlashed(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(50*coin.Unit, v1, v2, v3)
	id := jobID(1)
	c.settle(c.job(id, tokens, true))
	first := keyOf(c.check(id).VerifierAddr())
	minerBefore := c.balance(miner.addr)
	burnedBefore := c.supply().Burned
	c.ok(first, audits.NewReportMsg(id, false, []byte{1}, "made up"))
	second := keyOf(c.check(id).SecondAddr())
	c.ok(second, audits.NewReportMsg(id, true, nil, ""))
	p := audits.DefaultParams()
	cut := (100 * coin.Unit).MulDiv(p.BondSlashBps, 10_000)
	if v := c.verifier(first.addr); v.Bond != 100*coin.Unit-cut || v.Overruled != 1 || v.Open != 0 {
		t.Fatalf("claimant %+v, want bond cut by %s", v, cut)
	}
	checkFee := p.Fee(price)
	if got := c.balance(miner.addr); got != minerBefore+price-checkFee {
		t.Fatalf("miner %s, want %s", got, minerBefore+price-checkFee)
	}
	if o := c.operator(miner.addr); o.Disputes != 0 || o.Bonded != 50*coin.Unit {
		t.Fatalf("miner's stake %+v: frozen or cut after an overruled claim", o)
	}
	if got, want := c.supply().Burned, burnedBefore+cut+2*fee/2; got != want {
		t.Fatalf("burned %s, want %s", got, want)
	}
	if ch := c.check(id); ch.Status != audits.StatusOverruled || ch.BondSlash != cut {
		t.Fatalf("check %s", audits.StatusName(ch.Status))
	}
	c.conserved()
}

func TestSilentVerifierLosesPartOfItsBondAndThePayIsReleased(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(0, v1, v2)
	id := jobID(1)
	c.settle(c.job(id, tokens, true))
	ch := c.check(id)
	silent := ch.VerifierAddr()
	minerBefore := c.balance(miner.addr)
	for c.height < ch.Deadline {
		c.block()
	}
	// Its last block to report has ended: too late now.
	c.refused(keyOf(silent), audits.NewReportMsg(id, true, nil, ""), audits.ErrNotAssigned)
	cut := (100 * coin.Unit).MulDiv(audits.DefaultParams().TimeoutSlashBps, 10_000)
	if v := c.verifier(silent); v.Bond != 100*coin.Unit-cut || v.TimedOut != 1 || v.Open != 0 {
		t.Fatalf("silent verifier %+v", v)
	}
	if got := c.balance(miner.addr); got != minerBefore+price {
		t.Fatalf("miner %s, want %s: a silent verifier must not hold the pay", got, minerBefore+price)
	}
	if s := c.check(id).Status; s != audits.StatusTimedOut {
		t.Fatalf("status %s", audits.StatusName(s))
	}
	c.conserved()
}

func TestNoEligibleVerifierReleasesThePay(t *testing.T) {
	c := newChain(t, everyJob())
	// Only the miner and the customer are verifiers: neither may check.
	c.setup(0, miner, alice)
	id := jobID(1)
	raw := c.job(id, tokens, true)
	before := c.balance(miner.addr)
	c.settle(raw)
	if got := c.balance(miner.addr); got != before+price {
		t.Fatalf("miner %s, want %s", got, before+price)
	}
	if s := c.check(id).Status; s != audits.StatusUnchecked {
		t.Fatalf("status %s", audits.StatusName(s))
	}
	c.conserved()
}

func TestVerifierIsNeverTheMinerNorTheCustomer(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(0, miner, alice, v1, v2)
	for i := byte(1); i <= 12; i++ {
		id := jobID(i)
		c.settle(c.job(id, tokens, true))
		v := c.check(id).VerifierAddr()
		if v == miner.addr || v == alice.addr {
			t.Fatalf("job %d drawn to %s, a party to it", i, v)
		}
		c.ok(keyOf(v), audits.NewReportMsg(id, true, nil, ""))
	}
	c.conserved()
}

func TestRefusedMessagesChangeNothing(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(0, v1, v2)
	c.refused(v3, audits.NewRegisterMsg(coin.Unit), audits.ErrBond)
	c.refused(v3, audits.NewUnregisterMsg(), audits.ErrNotVerifier)
	id := jobID(1)
	c.settle(c.job(id, tokens, true))
	ch := c.check(id)
	assigned := keyOf(ch.VerifierAddr())
	other := v1
	if assigned.addr == v1.addr {
		other = v2
	}
	c.refused(other, audits.NewReportMsg(id, true, nil, ""), audits.ErrNotAssigned)
	c.refused(assigned, audits.NewReportMsg(id, false, nil, ""), audits.ErrInvalidReport)
	c.refused(assigned, audits.NewReportMsg(jobID(9), true, nil, ""), audits.ErrCheckNotFound)
	c.refused(assigned, audits.NewUnregisterMsg(), audits.ErrVerifierBusy)
	if got := c.check(id); got.Status != audits.StatusAssigned {
		t.Fatalf("a refused report changed the check: %s", audits.StatusName(got.Status))
	}
	// Once done, a verifier leaves with its whole bond.
	c.ok(assigned, audits.NewReportMsg(id, true, nil, ""))
	before := c.balance(assigned.addr)
	c.ok(assigned, audits.NewUnregisterMsg())
	if got := c.balance(assigned.addr); got != before+100*coin.Unit-fee {
		t.Fatalf("bond not returned: %s", got)
	}
	c.conserved()
}

func TestSilentSecondVerifierFreesTheMinerAndSparesTheClaimant(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(50*coin.Unit, v1, v2, v3)
	id := jobID(1)
	c.settle(c.job(id, tokens, true))
	first := keyOf(c.check(id).VerifierAddr())
	minerBefore := c.balance(miner.addr)
	c.ok(first, audits.NewReportMsg(id, false, []byte{1}, "chunk 0 differs"))
	ch := c.check(id)
	for c.height < ch.Deadline {
		c.block()
	}
	cut := (100 * coin.Unit).MulDiv(audits.DefaultParams().TimeoutSlashBps, 10_000)
	if v := c.verifier(ch.SecondAddr()); v.Bond != 100*coin.Unit-cut || v.TimedOut != 1 || v.Open != 0 {
		t.Fatalf("silent second verifier %+v", v)
	}
	if v := c.verifier(first.addr); v.Bond != 100*coin.Unit || v.Open != 0 {
		t.Fatalf("the claimant %+v: slashed or held on an unproven claim", v)
	}
	if got := c.balance(miner.addr); got != minerBefore+price {
		t.Fatalf("miner %s, want %s", got, minerBefore+price)
	}
	if o := c.operator(miner.addr); o.Disputes != 0 || o.Bonded != 50*coin.Unit {
		t.Fatalf("miner's stake %+v", o)
	}
	c.conserved()
}

func TestNoSecondVerifierLeavesTheClaimUnproven(t *testing.T) {
	c := newChain(t, everyJob())
	c.setup(50*coin.Unit, v1) // one verifier: nobody can re-check its claim
	id := jobID(1)
	c.settle(c.job(id, tokens, true))
	minerBefore := c.balance(miner.addr)
	c.ok(v1, audits.NewReportMsg(id, false, []byte{1}, "chunk 0 differs"))
	if s := c.check(id).Status; s != audits.StatusUnchecked {
		t.Fatalf("status %s", audits.StatusName(s))
	}
	if got := c.balance(miner.addr); got != minerBefore+price {
		t.Fatalf("miner %s, want %s", got, minerBefore+price)
	}
	if o := c.operator(miner.addr); o.Disputes != 0 {
		t.Fatalf("miner's stake still frozen: %+v", o)
	}
	if v := c.verifier(v1.addr); v.Open != 0 || v.Bond != 100*coin.Unit {
		t.Fatalf("claimant %+v", v)
	}
	c.conserved()
}

// TestDrawSelectsItsShare: over many jobs the draw selects close to
// spot_check_bps of them (the figures are fixed: the draw is a hash).
func TestDrawSelectsItsShare(t *testing.T) {
	hash := []byte("a block hash")
	n := 0
	for i := range 10_000 {
		id := make([]byte, jobs.IDLen)
		id[0], id[1] = byte(i>>8), byte(i)
		if audits.Selected(hash, id, 2500) {
			n++
		}
		if audits.Selected(hash, id, 0) {
			t.Fatal("spot_check_bps 0 selected a job")
		}
		if !audits.Selected(hash, id, 10_000) {
			t.Fatal("spot_check_bps 10000 left a job out")
		}
	}
	if n < 2350 || n > 2650 {
		t.Fatalf("%d of 10000 selected at 25%%", n)
	}
}
