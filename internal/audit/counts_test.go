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

// TestRecheckFailsAReceiptThatCountsMoreTokensThanItRan: the customer
// pays tokens out × price, and the token counts are the miner's own
// report. An honest generation whose receipt claims more output tokens
// than the attestation lists (charging for work not done) fails the spot
// check; the same job with its true counts passes.
func TestRecheckFailsAReceiptThatCountsMoreTokensThanItRan(t *testing.T) {
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hash, err := verify.ModelFileHash(engine.NewRegistry(t.TempDir()), engine.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	const maxTokens = 40
	res, a, err := verify.Generate(context.Background(), m, engine.GenerateRequest{Prompt: prompt, MaxTokens: maxTokens, Temperature: 0.8, Seed: 3, Threads: 1}, hash, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	att, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	job := func(in, out uint64) coordinator.AuditJob {
		_, priv, _ := ed25519.GenerateKey(nil)
		ph, rh, ah := sha256.Sum256([]byte(prompt)), sha256.Sum256([]byte(res.Text)), sha256.Sum256(att)
		r := jobs.Receipt{JobID: make([]byte, jobs.IDLen), ChainID: "aitbc-devnet", Customer: make([]byte, 20), Model: engine.DefaultModel,
			PromptHash: ph[:], ResultHash: rh[:], TokensIn: in, TokensOut: out,
			StartMs: 1, EndMs: 2, Price: coin.Amount(out), AttestHash: ah[:]}
		r.Sign(priv)
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return coordinator.AuditJob{JobID: hex.EncodeToString(r.JobID), Kind: "completion", Model: engine.DefaultModel, Prompt: prompt,
			MaxTokens: maxTokens, Result: res.Text, Receipt: b, Attestation: att, Sampling: &coordinator.SamplingView{Temperature: 0.8, Seed: 3}}
	}
	check := audit.Recheck(t.TempDir(), 2)
	in, out := uint64(len(res.PromptTokens)), uint64(len(res.Tokens))
	v, err := check(context.Background(), job(in, out))
	if err != nil || !v.Pass {
		t.Fatalf("true counts: %+v, %v; want a pass", v, err)
	}
	for _, c := range []struct {
		name    string
		in, out uint64
	}{
		{"output over-counted", in, out + 5},
		{"prompt over-counted", in + 5, out},
	} {
		v, err = check(context.Background(), job(c.in, c.out))
		if err != nil || v.Pass || !strings.Contains(v.Reason, "the receipt counts") {
			t.Errorf("%s: %+v, %v; want a fail naming the counts", c.name, v, err)
		}
	}
}
