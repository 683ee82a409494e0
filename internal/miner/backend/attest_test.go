package backend_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/verify"
)

// TestBuiltinAttestsItsGenerations: a job on the built-in engine comes back
// with an attestation that a verifier reproduces with the same model, and
// that no longer verifies once the result is changed.
func TestBuiltinAttestsItsGenerations(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{Threads: 1})
	defer b.Close()
	ctx := context.Background()
	res, err := b.Generate(ctx, backend.Request{Model: engine.DefaultModel, Prompt: "Pierre said", MaxTokens: 40, Temperature: 0.8, Seed: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attestation == "" {
		t.Fatal("no attestation from the built-in engine")
	}
	a, err := verify.DecodeAttestation([]byte(res.Attestation))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.OutputTokens) != res.TokensOut || len(a.Commits) != (res.TokensOut+31)/32 {
		t.Fatalf("attestation of %d tokens and %d commitments for a result of %d tokens", len(a.OutputTokens), len(a.Commits), res.TokensOut)
	}
	hash, err := verify.ModelFileHash(engine.NewRegistry(t.TempDir()), engine.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Recompute(ctx, m, a, verify.Expected{ModelSHA256: hash, Result: &res.Text, MaxTokens: 40}, 2, verify.DefaultTolerance)
	if err != nil || !rep.Pass {
		t.Fatalf("honest attestation rejected: %v %+v", err, rep)
	}
	other := res.Text + " and more"
	if _, err := verify.Recompute(ctx, m, a, verify.Expected{ModelSHA256: hash, Result: &other}, 1, verify.DefaultTolerance); !errors.Is(err, verify.ErrTokens) {
		t.Fatalf("a changed result: %v, want ErrTokens", err)
	}
}

// TestStopSequenceJobsGoWithoutAttestation: the tokens of a job cut by a
// stop sequence run past its text, so it carries no attestation.
func TestStopSequenceJobsGoWithoutAttestation(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{Threads: 1})
	defer b.Close()
	res, err := b.Generate(context.Background(), backend.Request{Model: engine.DefaultModel, Prompt: "Pierre said", MaxTokens: 60, Seed: 9, Stop: []string{" "}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attestation != "" {
		t.Fatalf("a job cut by a stop sequence (%q) carries an attestation", res.Text)
	}
}
