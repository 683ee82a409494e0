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
	// The sampling parameters are signed in (version 3), after the
	// engine's defaults, and the verifier replays every draw from them.
	if sp := a.Sampling; a.Version != verify.VersionSampling || sp == nil || sp.Temperature != 0.8 || sp.TopP != 1 || sp.Seed != 9 || sp.MaxTokens != 40 {
		t.Fatalf("attestation version %d, sampling %+v", a.Version, a.Sampling)
	}
	exp := verify.Expected{ModelSHA256: hash, Result: &res.Text, MaxTokens: 40, Sampling: &verify.JobSampling{Temperature: 0.8, Seed: 9}}
	rep, err := verify.Recompute(ctx, m, a, exp, 2, verify.DefaultTolerance)
	if err != nil || !rep.Pass || rep.Replayed < res.TokensOut {
		t.Fatalf("honest attestation rejected: %v %+v", err, rep)
	}
	other := res.Text + " and more"
	if _, err := verify.Recompute(ctx, m, a, verify.Expected{ModelSHA256: hash, Result: &other}, 1, verify.DefaultTolerance); !errors.Is(err, verify.ErrTokens) {
		t.Fatalf("a changed result: %v, want ErrTokens", err)
	}
}

// TestStopStringsAreAttested: a job with stop strings that none of its
// text reached is attested with them; one with more than an attestation
// holds goes without.
func TestStopStringsAreAttested(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{Threads: 1})
	defer b.Close()
	ctx := context.Background()
	stops := []string{"\u0000never"}
	res, err := b.Generate(ctx, backend.Request{Model: engine.DefaultModel, Prompt: "Pierre said", MaxTokens: 20, Seed: 9, Stop: stops}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := verify.DecodeAttestation([]byte(res.Attestation))
	if err != nil || len(a.Sampling.StopStrings) != 1 || a.Sampling.StopStrings[0] != stops[0] {
		t.Fatalf("attestation %v: %+v", err, a)
	}
	many := make([]string, verify.MaxStopStrings+1)
	for i := range many {
		many[i] = "\u0000never"
	}
	res, err = b.Generate(ctx, backend.Request{Model: engine.DefaultModel, Prompt: "Pierre said", MaxTokens: 20, Seed: 9, Stop: many}, nil)
	if err != nil || res.Attestation != "" || res.TokensOut != 20 {
		t.Fatalf("%d stop strings: %v, attestation of %d bytes, %d tokens", len(many), err, len(res.Attestation), res.TokensOut)
	}
}

// TestStopSequenceJobsAreAttested: a job cut by a stop sequence is
// attested with the tokens up to the one that completed it and the stop
// reason "stop"; the verifier replays them, and the result it rebuilds is
// the text before the stop, which the receipt signs.
func TestStopSequenceJobsAreAttested(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{Threads: 1})
	defer b.Close()
	ctx := context.Background()
	stops := []string{" "}
	res, err := b.Generate(ctx, backend.Request{Model: engine.DefaultModel, Prompt: "Pierre said", MaxTokens: 60, Temperature: 0.8, Seed: 9, Stop: stops}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := verify.DecodeAttestation([]byte(res.Attestation))
	if err != nil || a.Stop != verify.StopString || len(a.OutputTokens) != res.TokensOut || len(a.OutputTokens) >= 60 {
		t.Fatalf("a job cut by a stop sequence (%q): %v, attestation %+v", res.Text, err, a)
	}
	hash, err := verify.ModelFileHash(engine.NewRegistry(t.TempDir()), engine.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	exp := verify.Expected{ModelSHA256: hash, Result: &res.Text, MaxTokens: 60, Sampling: &verify.JobSampling{Temperature: 0.8, Seed: 9, Stop: stops}}
	if rep, err := verify.Recompute(ctx, m, a, exp, 1, verify.DefaultTolerance); err != nil || !rep.Pass || rep.Replayed != len(a.OutputTokens) {
		t.Fatalf("honest stop-sequence job: %v %+v", err, rep)
	}
	// A receipt that signed the text with the stop string (the miner
	// charging for it) does not match what the tokens make.
	full := res.Text + stops[0]
	exp.Result = &full
	if _, err := verify.Recompute(ctx, m, a, exp, 1, verify.DefaultTolerance); !errors.Is(err, verify.ErrTokens) {
		t.Fatalf("the text with its stop string as the result: %v, want ErrTokens", err)
	}
}
