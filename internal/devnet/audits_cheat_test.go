//go:build aitbc_cheat

package devnet_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/audit"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/verify"
	"github.com/aitbc/aitbc/internal/walletd"
)

// TestCheatingMinerIsCaughtDisputedAndSlashedOnADevnet: every attested
// job is spot-checked; three verifiers run the verifier service; miner 0
// is honest, miner 1 truncates its outputs while attesting a full run
// (claiming the job's limit and an eos stop: the verifier's replay of the
// sampler draws the token the engine went on with at the cut).
// The honest miner's job passes (the verifier earns the check fee, the
// miner the rest); the cheat's is failed by one verifier, confirmed by a
// second, and the miner's stake slashed: the customer gets the pay back
// and half the cut, the verifiers a fee each and a fifth of the cut, the
// rest is burned, every figure checked to the unit.
func TestCheatingMinerIsCaughtDisputedAndSlashedOnADevnet(t *testing.T) {
	cheatIsCaughtDisputedAndSlashed(t, backend.CheatTruncate, "the sampler draws token")
}

// TestSubstituteModelMinerIsCaughtDisputedAndSlashedOnADevnet: the same
// with miner 1 serving another model under tolstoy-1m's name (`miner
// start --cheat model`: a copy with one layer's weights scaled,
// backend.WriteSubstitute) while attesting tolstoy-1m's file hash; the
// verifiers recompute with the real tolstoy-1m and the commitments differ.
func TestSubstituteModelMinerIsCaughtDisputedAndSlashedOnADevnet(t *testing.T) {
	cheatIsCaughtDisputedAndSlashed(t, backend.CheatModel, "exponent mismatches")
}

// cheatIsCaughtDisputedAndSlashed runs the scenario above with miner 1
// cheating in mode; the first verifier's reason must contain reason.
func cheatIsCaughtDisputedAndSlashed(t *testing.T, mode backend.CheatMode, reason string) {
	p := audits.DefaultParams()
	p.SpotCheckBps, p.AllowCheatMiners, p.CheckWindowBlocks, p.MinBond = 10_000, true, 400, 10*coin.Unit
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	quant := m.TensorType()
	m.Close()
	claim, err := verify.ModelFileHash(nil, engine.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	var sub string
	if mode == backend.CheatModel {
		// What `miner start --cheat model` does: the substitute goes into
		// the home's registry, which the devnet's built-in backend serves.
		if sub, err = backend.WriteSubstitute(engine.NewRegistry(home), engine.DefaultModel); err != nil {
			t.Fatal(err)
		}
	}
	e := start(t, devnet.Config{Home: home, Miners: 2, MinerSlots: 1, Audits: &p, WrapRunner: func(i int, r miner.Runner) miner.Runner {
		if i != 1 {
			return r
		}
		honest := r.(miner.BackendRunner).B
		return miner.BackendRunner{B: &backend.Cheat{Inner: honest, Mode: mode, Substitute: sub, ClaimHash: claim, ClaimQuant: quant}}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	key, err := walletd.ReadAPIKey(e.home)
	if err != nil {
		t.Fatal(err)
	}
	wc := walletd.NewClient(e.d.WalletURL(), key)
	sk, err := os.ReadFile(walletd.ServiceKeyPath(e.home))
	if err != nil {
		t.Fatal(err)
	}
	svcC := walletd.NewClient(e.d.WalletURL(), strings.TrimSpace(string(sk)))
	const pw = "123"
	ci, err := e.node.Chain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commit := func(c *walletd.Client, wallet string, msg tx.Msg) {
		t.Helper()
		s, err := c.SignAndSubmit(ctx, wallet, pw, msg, 0)
		if err != nil {
			t.Fatalf("%s by %s: %v", msg.Type, wallet, err)
		}
		if v, err := e.node.WaitTx(ctx, s.TxHash, 50*time.Millisecond); err != nil || v.Status != "committed" {
			t.Fatalf("%s by %s: %v %+v", msg.Type, wallet, err, v)
		}
	}

	honestMiner, cheatMiner := e.d.Miners[0].Address(), e.d.Miners[1].Address()
	const stake = 50 * coin.Unit
	commit(svcC, devnet.MinerWallet(1), staking.NewStakeMsg(cheatMiner, stake))

	// Three verifiers, funded by genesis-ops, bonded, each running the
	// verifier service over the devnet's node and coordinator.
	ks, err := keystore.ForHome(e.home, keystore.WithKDF(keystore.InsecureTestKDF()))
	if err != nil {
		t.Fatal(err)
	}
	verifiers := map[address.Address]string{}
	for i := range 3 {
		name := fmt.Sprintf("verifier-%d", i)
		w, err := wc.Create(ctx, name, pw)
		if err != nil {
			t.Fatal(err)
		}
		commit(wc, devnet.GenesisWallet, bank.NewSendMsg(w.Address, 100*coin.Unit))
		commit(wc, name, audits.NewRegisterMsg(20*coin.Unit))
		verifiers[w.Address] = name
	}
	vBefore := map[address.Address]coin.Amount{}
	for a := range verifiers {
		vBefore[a] = e.balance(a)
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for a, name := range verifiers {
		k, err := ks.Unlock(name, pw)
		if err != nil {
			t.Fatal(err)
		}
		s, err := audit.New(audit.Config{Key: k, Node: e.node, Source: coordinator.NewClient(e.d.CoordinatorURL(), ""),
			Submit: func(ctx context.Context, msg tx.Msg) (string, error) {
				sub, err := wc.SignAndSubmit(ctx, name, pw, msg, 0)
				return sub.TxHash, err
			},
			Check: audit.Recheck(e.home, 1), Poll: 100 * time.Millisecond})
		if err != nil || s.Address() != a {
			t.Fatalf("verifier %s: %v", name, err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Run(sctx) }()
	}

	customer := e.d.Genesis
	custBefore := e.balance(customer)
	// Jobs two at a time (one slot per miner) until each miner has settled one.
	byMiner := map[string]string{}
	for round := 0; round < 5 && (byMiner[honestMiner.String()] == "" || byMiner[cheatMiner.String()] == ""); round++ {
		var ids []string
		for i := range 2 {
			j := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": fmt.Sprintf("It was round %d, job %d,", round, i), "max_tokens": 40, "temperature": 0})
			ids = append(ids, j.JobID)
		}
		for _, id := range ids {
			v := e.waitStatus(e.d.APIKey, id, 2*time.Minute, "settled")
			if byMiner[v.Miner] == "" {
				byMiner[v.Miner] = id
			}
		}
	}
	honestJob, cheatJob := byMiner[honestMiner.String()], byMiner[cheatMiner.String()]
	if honestJob == "" || cheatJob == "" {
		t.Fatalf("jobs by miner: %v", byMiner)
	}
	waitCheck := func(id string, statuses ...string) audits.CheckView {
		t.Helper()
		for ctx.Err() == nil {
			c, err := audits.QueryCheck(ctx, e.node, id)
			if err == nil {
				for _, s := range statuses {
					if c.Status == s {
						return c
					}
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		c, err := audits.QueryCheck(context.Background(), e.node, id)
		t.Fatalf("check of %s: %+v %v, want %v", id, c, err, statuses)
		return c
	}
	// Every job was drawn: wait for all of them to resolve.
	hc := waitCheck(honestJob, "passed")
	cc := waitCheck(cheatJob, "fraud_confirmed")
	l, err := audits.QueryChecks(ctx, e.node, true, "")
	for ctx.Err() == nil && (err != nil || len(l.Checks) > 0) {
		time.Sleep(100 * time.Millisecond)
		l, err = audits.QueryChecks(ctx, e.node, true, "")
	}

	if hc.Fees != p.Fee(hc.Held) || hc.Held == 0 {
		t.Fatalf("honest check: %+v", hc)
	}
	if cc.Verifier == "" || cc.Second == "" || cc.Verifier == cc.Second || !strings.Contains(cc.Reason, "verify") || !strings.Contains(cc.Reason, reason) {
		t.Fatalf("cheat check: %+v", cc)
	}
	// Every check: an honest miner's passed, a cheat's confirmed, each
	// outcome's figures as docs/ECONOMICS.md says; the cheat's stake cut
	// once per fraud.
	all, err := audits.QueryChecks(ctx, e.node, false, "")
	if err != nil {
		t.Fatal(err)
	}
	var refunded, slashed coin.Amount
	frauds := 0
	for _, c := range all.Checks {
		t.Logf("check of %s by miner %s: %s, held %s, fees %s, slashed %s, refunded %s, burned %s (%s)", c.JobID, c.Miner, c.Status, c.Held, c.Fees, c.Slashed, c.Refunded, c.Burned, c.Reason)
		fee := p.Fee(c.Held)
		switch c.Miner {
		case honestMiner:
			if c.Status != "passed" || c.Fees != fee {
				t.Fatalf("honest miner's check %+v", c)
			}
		case cheatMiner:
			toCust := c.Slashed.MulDiv(p.SlashCustomerBps, 10_000)
			shares := c.Slashed.MulDiv(p.SlashVerifiersBps, 10_000)
			if c.Status != "fraud_confirmed" || c.Slashed == 0 || c.Shares != shares || c.Burned != c.Slashed-toCust-shares ||
				c.Fees != 2*fee || c.Refunded != c.Held-2*fee+toCust {
				t.Fatalf("cheat's check %+v", c)
			}
			frauds++
			refunded += c.Refunded
			slashed += c.Slashed
		default:
			t.Fatalf("a check of miner %s", c.Miner)
		}
	}
	if first := coin.Amount(stake).MulDiv(p.SlashBps, 10_000); frauds == 1 && cc.Slashed != first {
		t.Fatalf("slashed %s of a %s stake, want %s", cc.Slashed, coin.Amount(stake), first)
	}
	// The customer: each cheat's pay back, less the two check fees, and
	// half the cut; every other job of its was paid from its deposit.
	if got := e.balance(customer); got != custBefore+refunded {
		t.Fatalf("customer %s, want %s + %s", got, custBefore, refunded)
	}
	ops, err := staking.QueryOperators(ctx, e.node)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range ops.Operators {
		if o.Address == cheatMiner {
			found = true
			if o.Bonded != stake-slashed || o.Slashed != slashed || o.Disputes != 0 {
				t.Fatalf("cheat's stake %+v, want %s bonded", o, stake-slashed)
			}
		}
	}
	if !found {
		t.Fatal("the cheat is no staking operator")
	}
	// Each verifier: what it earned (check fees, shares of the cut) less
	// its reports' transaction fees, to the unit.
	var earned coin.Amount
	for a := range verifiers {
		v, err := audits.QueryVerifier(ctx, e.node, a)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := e.balance(a), vBefore[a]+v.Earned-coin.Amount(v.Reports)*ci.MinFee; got != want {
			t.Fatalf("verifier %s holds %s, want %s + earned %s - %d report fees", a, got, vBefore[a], v.Earned, v.Reports)
		}
		if v.Slashed != 0 || v.Overruled != 0 || v.TimedOut != 0 {
			t.Fatalf("an honest verifier was penalised: %+v", v)
		}
		earned += v.Earned
	}
	var paid coin.Amount
	for _, c := range all.Checks {
		paid += c.Fees + c.Shares
	}
	if earned != paid {
		t.Fatalf("verifiers earned %s in all, the checks paid them %s", earned, paid)
	}
	if fr, err := audits.QueryMiner(ctx, e.node, cheatMiner); err != nil || int(fr.ConfirmedFrauds) != frauds {
		t.Fatalf("cheat's record %+v %v", fr, err)
	}
	if hr, err := audits.QueryMiner(ctx, e.node, honestMiner); err != nil || hr.ConfirmedFrauds != 0 || hr.Passed == 0 {
		t.Fatalf("honest miner's record %+v %v", hr, err)
	}
	if held := e.balance(address.Module(audits.HeldAccount)); held != 0 {
		t.Fatalf("audits.held holds %s at the end", held)
	}
	if e.burned() < cc.Burned { // the exact burn of each outcome: internal/chain/modules/audits' tests
		t.Fatal("the burned supply does not include the cheat's burned cut")
	}
}
