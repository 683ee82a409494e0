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
	check("truncating miner", &backend.Cheat{Inner: honest, Mode: backend.CheatTruncate, ClaimHash: hash, ClaimQuant: m.TensorType()}, "Pierre said", 64, verify.ErrMismatch)
	replay := &backend.Cheat{Inner: honest, Mode: backend.CheatReplay, ClaimHash: hash, ClaimQuant: m.TensorType()}
	if _, err := replay.Generate(ctx, backend.Request{Model: engine.DefaultModel, Prompt: "Natasha said", MaxTokens: 64, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	check("replaying miner", replay, "Pierre said", 64, verify.ErrTokens)
}
