package devnet_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/jobkind"
)

// TestSpotCheckedJobPassesOnADevnetAndPaysTheMiner: aitbc devnet
// --spot-check 1 checks every attested job with the verifier the devnet
// runs. The job settles, its pay is held by the audits module, the
// devnet's verifier re-runs it and reports a pass; the miner then gets
// the pay less the check fee, the verifier the fee less its report's
// transaction fee, to the unit, and nothing stays held.
func TestSpotCheckedJobPassesOnADevnetAndPaysTheMiner(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1, SpotCheckBps: 10_000})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := audits.QueryParams(ctx, e.node)
	if err != nil || p.SpotCheckBps != 10_000 {
		t.Fatalf("genesis audits params %+v %v", p, err)
	}
	va := e.d.VerifierAddress()
	v, err := audits.QueryVerifier(ctx, e.node, va)
	if va.IsZero() || err != nil || v.Bond != p.MinBond {
		t.Fatalf("devnet verifier %s: %+v %v, want a bond of %s", va, v, err, p.MinBond)
	}
	ci, err := e.node.Chain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := e.d.Miners[0].Address()
	minerBefore, rewardsBefore := e.minerWithRewards(m)
	verifierBefore := e.balance(va)

	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 40, "temperature": 0})
	s := e.waitStatus(e.d.APIKey, job.JobID, 2*time.Minute, "settled")
	price := jobs.PriceFor(uint64(s.TokensOut), coin.Unit)

	var c audits.CheckView
	for ctx.Err() == nil {
		if c, err = audits.QueryCheck(ctx, e.node, job.JobID); err == nil && c.Status == "passed" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c.Status != "passed" || c.Verifier != va.String() || c.Held != price || c.Miner != m {
		t.Fatalf("check %+v %v, want passed by %s holding %s", c, err, va, price)
	}
	fee := p.Fee(price)
	if c.Fees != fee || fee == 0 {
		t.Fatalf("check fees %s, want %s", c.Fees, fee)
	}
	// An epoch may end at any block and pay the miner (the devnet's only
	// one) for its work: what the rewards module paid miners is added.
	got, rewardsAfter := e.minerWithRewards(m)
	if want := minerBefore + price - fee + (rewardsAfter - rewardsBefore); got != want {
		t.Errorf("miner holds %s, want %s + pay %s - check fee %s + epoch rewards %s", got, minerBefore, price, fee, rewardsAfter-rewardsBefore)
	}
	v, err = audits.QueryVerifier(ctx, e.node, va)
	if err != nil || v.Reports != 1 || v.Upheld != 1 || v.Earned != fee || len(v.Assigned) != 0 {
		t.Fatalf("verifier after the check %+v %v", v, err)
	}
	if got, want := e.balance(va), verifierBefore+fee-ci.MinFee; got != want {
		t.Errorf("verifier holds %s, want %s + fee %s - report tx fee %s", got, verifierBefore, fee, ci.MinFee)
	}
	if held := e.balance(address.Module(audits.HeldAccount)); held != 0 {
		t.Errorf("audits.held holds %s after the pass", held)
	}
}

// minerWithRewards reads miner m's balance and what the rewards module
// has paid miners, at the same height.
func (e *env) minerWithRewards(m address.Address) (coin.Amount, coin.Amount) {
	e.t.Helper()
	for {
		r1, err := rewards.Query(context.Background(), e.node)
		if err != nil {
			e.t.Fatal(err)
		}
		bal := e.balance(m)
		r2, err := rewards.Query(context.Background(), e.node)
		if err != nil {
			e.t.Fatal(err)
		}
		if r1.Height == r2.Height {
			return bal, r2.ToMiners
		}
	}
}

func TestSpotCheckFraction(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want uint64
		ok   bool
	}{{0, 0, true}, {0.1, 1000, true}, {1, 10_000, true}, {0.0001, 1, true}, {0.00001, 0, false}, {-0.1, 0, false}, {1.5, 0, false}} {
		got, err := devnet.SpotCheckBps(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("SpotCheckBps(%v) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestSpotCheckedDataJobIsReexecutedOnADevnet: a data-processing job
// carries no attestation, yet with every job checked it is held, its
// input fetched by the devnet's verifier from the coordinator, re-run and
// passed, and the miner paid its pay less the check fee.
func TestSpotCheckedDataJobIsReexecutedOnADevnet(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1, SpotCheckBps: 10_000})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const table = "region,units\nnorth,10\nsouth,4\nnorth,7\n"
	path := filepath.Join(t.TempDir(), "sales.csv")
	if err := os.WriteFile(path, []byte(table), 0o600); err != nil {
		t.Fatal(err)
	}
	c := coordinator.NewClient(e.d.CoordinatorURL(), e.d.APIKey)
	info, err := c.UploadFile(ctx, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	spec, prompt, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeDataProcessing, Input: jobkind.FileRef{SHA256: info.Hash, Bytes: info.Size},
		Data: &dataproc.Spec{GroupBy: []string{"region"}, Aggregates: []dataproc.Aggregate{{Fn: "sum", Column: "units"}}, Output: "csv"}}, []byte(table))
	if err != nil {
		t.Fatal(err)
	}
	m := e.d.Miners[0].Address()
	minerBefore, rewardsBefore := e.minerWithRewards(m)
	job := e.submit(e.d.APIKey, map[string]any{"model": jobkind.ModelDataProcessing, "prompt": prompt, "max_tokens": spec.Units})
	s := e.waitStatus(e.d.APIKey, job.JobID, 2*time.Minute, "settled")
	var ch audits.CheckView
	for ctx.Err() == nil {
		if ch, err = audits.QueryCheck(ctx, e.node, job.JobID); err == nil && ch.Status == "passed" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	price := jobs.PriceFor(uint64(s.TokensOut), coin.Unit)
	if ch.Status != "passed" || ch.AttestHash != "" || ch.Held != price || ch.Verifier != e.d.VerifierAddress().String() {
		t.Fatalf("check %+v %v, want passed holding %s", ch, err, price)
	}
	// The evidence is the SHA-256 of the verifier's own output: the
	// report the miner returned, byte for byte. The devnet's coordinator
	// keeps files, so the result names the stored report by its SHA-256.
	var res coordinator.JobView
	if err := e.call("GET", "/v1/jobs/"+job.JobID+"/results", e.d.APIKey, nil, &res); err != nil || res.Result == nil {
		t.Fatalf("results: %+v %v", res, err)
	}
	report := sha256.Sum256([]byte(*res.Result))
	want := hex.EncodeToString(report[:])
	if ref, ok := jobkind.ParseFileResult(*res.Result); ok {
		want = ref.SHA256
	}
	if ch.Evidence != want {
		t.Fatalf("evidence %s, want the SHA-256 of the report %q", ch.Evidence, *res.Result)
	}
	got, rewardsAfter := e.minerWithRewards(m)
	if want := minerBefore + price - ch.Fees + (rewardsAfter - rewardsBefore); got != want || ch.Fees == 0 {
		t.Errorf("miner holds %s, want %s + pay %s - check fee %s + epoch rewards %s", got, minerBefore, price, ch.Fees, rewardsAfter-rewardsBefore)
	}
}

// TestSpotCheckOnAnOlderHomeFundsAndRegistersTheVerifier: a home made
// without --spot-check has no verifier wallet in its genesis; started
// again with the flag, genesis-ops funds the wallet and it is registered
// with min_bond, while the chain's spot_check_bps stays its genesis 0.
func TestSpotCheckOnAnOlderHomeFundsAndRegistersTheVerifier(t *testing.T) {
	home := t.TempDir()
	e := start(t, devnet.Config{Home: home, Miners: 1})
	if !e.d.VerifierAddress().IsZero() {
		t.Fatal("a verifier runs without --spot-check")
	}
	e.stop()
	e = start(t, devnet.Config{Home: home, Miners: 1, SpotCheckBps: 1000})
	ctx := context.Background()
	va := e.d.VerifierAddress()
	v, err := audits.QueryVerifier(ctx, e.node, va)
	p, perr := audits.QueryParams(ctx, e.node)
	if va.IsZero() || err != nil || perr != nil || v.Bond != p.MinBond || p.SpotCheckBps != 0 {
		t.Fatalf("verifier %s: %+v %v; params %+v %v", va, v, err, p, perr)
	}
	if got := e.balance(va); got <= 0 || got >= devnet.ServiceBalance {
		t.Fatalf("verifier holds %s, want the funding less its bond and fees", got)
	}
}
