//go:build aitbc_cheat

package backend_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/verify"
)

// go test -tags aitbc_cheat -run Cheat ./internal/miner/backend

func TestCheatingMinerIsCaught(t *testing.T) {
	ctx := context.Background()
	hash, err := verify.ModelFileHash(engine.NewRegistry(t.TempDir()), engine.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	honest := backend.NewBuiltin("", backend.BuiltinOptions{Threads: 1})
	defer honest.Close()
	check := func(name string, c *backend.Cheat, prompt string, maxTokens int, want error) {
		t.Helper()
		res, err := c.Generate(ctx, backend.Request{Model: engine.DefaultModel, Prompt: prompt, MaxTokens: maxTokens, Temperature: 0.8, Seed: 21}, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := verify.DecodeAttestation([]byte(res.Attestation))
		if err != nil {
			t.Fatal(err)
		}
		exp := verify.Expected{ModelSHA256: hash, Result: &res.Text, MaxTokens: maxTokens,
			PromptTokens: m.Tokenizer().Encode(prompt, true)}
		if _, err := verify.Recompute(ctx, m, a, exp, 1, verify.DefaultTolerance); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	// It claims the job's limit and an eos stop: the replayed draw at the
	// cut is not a stop (ErrReplay, whatever the stop's probability).
	check("truncating miner", &backend.Cheat{Inner: honest, Mode: backend.CheatTruncate, ClaimHash: hash, ClaimQuant: m.TensorType()}, "Pierre said", 64, verify.ErrReplay)
	replay := &backend.Cheat{Inner: honest, Mode: backend.CheatReplay, ClaimHash: hash, ClaimQuant: m.TensorType()}
	if _, err := replay.Generate(ctx, backend.Request{Model: engine.DefaultModel, Prompt: "Natasha said", MaxTokens: 64, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	check("replaying miner", replay, "Pierre said", 64, verify.ErrTokens)
}

// TestSubstituteModelIsCaught: a miner serving a copy of the listed model
// with one layer's weights scaled (WriteSubstitute), attesting the listed
// model, is rejected by the recomputation with the listed model; the
// substitute is not advertised.
func TestSubstituteModelIsCaught(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	reg := engine.NewRegistry(home)
	hash, err := verify.ModelFileHash(reg, engine.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := backend.WriteSubstitute(reg, engine.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	inner := backend.NewBuiltin(home, backend.BuiltinOptions{Threads: 1})
	defer inner.Close()
	c := &backend.Cheat{Inner: inner, Mode: backend.CheatModel, Substitute: sub, ClaimHash: hash, ClaimQuant: m.TensorType()}
	models, err := c.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range models {
		if mi.Name == sub {
			t.Fatalf("the substitute %s is advertised", sub)
		}
	}
	const prompt = "Pierre said"
	res, err := c.Generate(ctx, backend.Request{Model: engine.DefaultModel, Prompt: prompt, MaxTokens: 40, Temperature: 0.8, Seed: 3}, nil)
	if err != nil || res.Attestation == "" {
		t.Fatalf("substitute generation: %v (attestation %d bytes)", err, len(res.Attestation))
	}
	a, err := verify.DecodeAttestation([]byte(res.Attestation))
	if err != nil {
		t.Fatal(err)
	}
	exp := verify.Expected{ModelSHA256: hash, Result: &res.Text, MaxTokens: 40, PromptTokens: m.Tokenizer().Encode(prompt, true)}
	rep, err := verify.Recompute(ctx, m, a, exp, 1, verify.DefaultTolerance)
	if !errors.Is(err, verify.ErrMismatch) {
		t.Fatalf("substitute model: %+v %v, want ErrMismatch", rep, err)
	}
}
