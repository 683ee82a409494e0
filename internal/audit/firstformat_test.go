package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/audit"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/verify"
)

// firstFormatJob is an honest job of the built-in engine whose
// attestation is written in the first format (version 1: no sampling
// parameters), as an old miner would sign it: the first seed from 1 on
// whose generation stops at eos (eos true) or at its limit (eos false).
func firstFormatJob(t *testing.T, eos bool) coordinator.AuditJob {
	t.Helper()
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hash, err := verify.ModelFileHash(engine.NewRegistry(t.TempDir()), engine.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(1); seed < 500; seed++ {
		res, a, err := verify.Generate(context.Background(), m, engine.GenerateRequest{Prompt: prompt, MaxTokens: 40, Temperature: 0.8, Seed: seed, Threads: 1}, hash, "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		if (res.Stop == engine.StopEOS) != eos {
			continue
		}
		a.Version, a.Sampling = verify.Version, nil
		att, err := a.Encode()
		if err != nil {
			t.Fatal(err)
		}
		_, priv, _ := ed25519.GenerateKey(nil)
		ph, rh, ah := sha256.Sum256([]byte(prompt)), sha256.Sum256([]byte(res.Text)), sha256.Sum256(att)
		r := jobs.Receipt{JobID: make([]byte, jobs.IDLen), ChainID: "aitbc-devnet", Customer: make([]byte, 20), Model: engine.DefaultModel,
			PromptHash: ph[:], ResultHash: rh[:], TokensIn: uint64(len(res.PromptTokens)), TokensOut: uint64(len(res.Tokens)),
			StartMs: 1, EndMs: 2, Price: coin.Amount(len(res.Tokens)), AttestHash: ah[:]}
		r.Sign(priv)
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return coordinator.AuditJob{JobID: hex.EncodeToString(r.JobID), Kind: "completion", Model: engine.DefaultModel, Prompt: prompt,
			MaxTokens: 40, Result: res.Text, Receipt: b, Attestation: att, Sampling: &coordinator.SamplingView{Temperature: 0.8, Seed: seed}}
	}
	t.Fatalf("no seed below 500 gives a job that stops at eos %v", eos)
	return coordinator.AuditJob{}
}

// TestRecheckFailsAFirstFormatJobThatStoppedEarly: a version 1
// attestation cannot show that its stop was drawn (no sampling
// parameters, so no replay), and stopping early is what a truncation
// claims: the verifier service fails it with that reason even when the
// job is honest and the commitments and probability checks pass (no miner
// of this release signs version 1; docs/VERIFICATION.md).
func TestRecheckFailsAFirstFormatJobThatStoppedEarly(t *testing.T) {
	j := firstFormatJob(t, true)
	a, err := verify.DecodeAttestation(j.Attestation)
	if err != nil {
		t.Fatal(err)
	}
	// The job itself verifies, by probability only: the policy decides.
	rep, err := verify.VerifyReceipt(context.Background(), t.TempDir(), engine.DefaultModel,
		verify.ReceiptClaim{AttestHash: attestHash(j.Attestation), Prompt: &j.Prompt, Result: &j.Result, MaxTokens: j.MaxTokens}, j.Attestation, 2, verify.DefaultTolerance)
	if err != nil || !rep.Pass || rep.StopCheck != verify.StopByProbability || a.Stop != string(engine.StopEOS) {
		t.Fatalf("the version 1 job: %v, stop check %q, stop %s; want a pass by probability at eos", err, rep.StopCheck, a.Stop)
	}
	v, err := audit.Recheck(t.TempDir(), 2)(context.Background(), j)
	if err != nil || v.Pass || !strings.Contains(v.Reason, "version 1 attestation cannot show its stop was drawn") || len(v.Evidence) != sha256.Size {
		t.Fatalf("version 1 job stopped at eos: %+v, %v; want a fail with the reason", v, err)
	}
}

// TestRecheckPassesAFirstFormatJobAtItsLimit: a version 1 job that ran
// to its limit has no stop to draw (the limit is checked against the
// job's), so it still passes.
func TestRecheckPassesAFirstFormatJobAtItsLimit(t *testing.T) {
	v, err := audit.Recheck(t.TempDir(), 2)(context.Background(), firstFormatJob(t, false))
	if err != nil || !v.Pass {
		t.Fatalf("version 1 job at its limit: %+v, %v", v, err)
	}
}

func attestHash(att []byte) []byte {
	h := sha256.Sum256(att)
	return h[:]
}
