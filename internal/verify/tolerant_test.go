package verify_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/verify"
)

// inexact is a with its last chunk recommitted one value a step off (a
// near-miss within the tolerance), and fails the test unless the
// recomputation is then inexact but within the tolerance's bounds.
func inexact(t *testing.T, m *engine.Model, a *verify.Attestation) *verify.Attestation {
	t.Helper()
	b := clone(a)
	if err := nudgeLastChunk(m, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// notExact fails unless rep's chunks include one that is not an exact
// match (so the exact replay did not apply).
func notExact(t *testing.T, rep verify.Report) {
	t.Helper()
	for _, c := range rep.Chunks {
		if c != (verify.ChunkResult{Boundary: c.Boundary}) {
			return
		}
	}
	t.Fatalf("every chunk matched exactly: the nudge did not make the job inexact")
}

// eosJobs finds honest jobs at temperature temp and top-p topP that stop
// at eos before their limit.
func eosJobs(t *testing.T, f *fixture, temp, topP float32, want int) []job {
	t.Helper()
	m, h := f.byType["Q8_0"], f.hash["Q8_0"]
	r := rand.New(rand.NewPCG(5, 17))
	var out []job
	for i := range 400 {
		p, _ := prompts(r)
		j := genJob(t, m, h, p, 64, temp, topP, uint64(i+1))
		if j.a.Stop == string(engine.StopEOS) && len(j.a.OutputTokens) > 0 {
			out = append(out, j)
			if len(out) == want {
				return out
			}
		}
	}
	t.Fatalf("T %v top-p %v: found %d jobs that stop at eos, want %d", temp, topP, len(out), want)
	return nil
}

// TestHonestInexactStopPasses: the engine's jobs that stop at eos, one
// committed value moved a step (what another engine's rounding does), so
// the recomputation is not exact, pass: the stop is replayed within the
// slack. With the slack made negligible they still pass: the coin the
// verifier draws is the one the engine drew (the stream is at the stop's
// draw whatever was replayed before), inside the stop token's interval.
func TestHonestInexactStopPasses(t *testing.T) {
	f := newFixture(t)
	m := f.byType["Q8_0"]
	ctx := context.Background()
	for _, c := range []struct {
		temp, topP float32
		jobs       int
	}{{0.8, 0, 3}, {1, 0.9, 3}} {
		// Greedy jobs are not here: tolstoy-1m's greedy outputs of 64
		// tokens never stopped at eos over these prompts. TestGreedyInexactStop
		// and engine's TestDrawTokensAgreesWithSample cover that path.
		for i, j := range eosJobs(t, f, c.temp, c.topP, c.jobs) {
			a := inexact(t, m, j.a)
			for _, stopOnly := range []bool{false, true} {
				tol := verify.DefaultTolerance
				tol.ReplayStopOnly = stopOnly
				tol.StopCoinSlack = 1e-12
				rep, err := verify.Recompute(ctx, m, a, j.exp, 2, tol)
				if err != nil || !rep.Pass {
					t.Fatalf("T %v top-p %v job %d (stop only %v): honest inexact job rejected: %v", c.temp, c.topP, i, stopOnly, err)
				}
				notExact(t, rep)
				if rep.StopCheck != verify.StopReplayedWithinSlack || rep.Replayed != 0 {
					t.Errorf("job %d: stop check %q, %d replayed; want %q and no exact replay", i, rep.StopCheck, rep.Replayed, verify.StopReplayedWithinSlack)
				}
			}
		}
	}
}

// TestInexactTruncationIsCaughtByTolerantReplay: an output cut where the
// stop is likely enough for the probability floor (its version 1 twin is
// accepted), with one committed value moved a step so the recomputation
// is not exact and the exact replay does not apply, is rejected by the
// tolerant replay of the stop: the coin fell on the token the engine went
// on with, far from the stop tokens' interval.
func TestInexactTruncationIsCaughtByTolerantReplay(t *testing.T) {
	f := newFixture(t)
	m, h := f.byType["Q8_0"], f.hash["Q8_0"]
	ctx := context.Background()
	for i, tr := range truncations(t, f, 4) {
		a := inexact(t, m, tr)
		exp := verify.Expected{ModelSHA256: h, MaxTokens: 64, Sampling: &verify.JobSampling{Temperature: 0.8, Seed: a.Sampling.Seed}}
		if rep, err := verify.Recompute(ctx, m, asV1(a), exp, 1, verify.DefaultTolerance); err != nil || !rep.Pass {
			t.Fatalf("truncation %d: the probability checks reject it (%v); want a cut they accept", i, err)
		} else if rep.StopCheck != verify.StopByProbability {
			t.Errorf("truncation %d, version 1: stop check %q, want %q", i, rep.StopCheck, verify.StopByProbability)
		}
		rep, err := verify.Recompute(ctx, m, a, exp, 2, verify.DefaultTolerance)
		if !errors.Is(err, verify.ErrReplay) || rep.Pass {
			t.Fatalf("truncation %d after %d tokens, inexact: %v, want ErrReplay", i, len(a.OutputTokens), err)
		}
		notExact(t, rep)
		if !strings.Contains(err.Error(), "coin") || rep.StopCheck != verify.StopReplayedWithinSlack {
			t.Errorf("truncation %d: %v (stop check %q), want the coin named", i, err, rep.StopCheck)
		}
	}
}

// TestGreedyInexactStop: at temperature 0 the tolerant replay requires a
// stop token's logit within StopLogitSlack of the largest. An honest
// greedy job cut where the stop is plausible (≥ MinStopProb) but its
// logit is more than the slack below the argmax is rejected once made
// inexact; with the slack widened past that margin it passes, so the
// margin is what decides.
func TestGreedyInexactStop(t *testing.T) {
	f := newFixture(t)
	m, h := f.byType["Q8_0"], f.hash["Q8_0"]
	ctx := context.Background()
	r := rand.New(rand.NewPCG(8, 3))
	found := 0
	for round := 0; round < 40 && found < 2; round++ {
		p, _ := prompts(r)
		j := genJob(t, m, h, p, 64, 0, 0, 0)
		seq := seqOf(j.a)
		pl := len(j.a.PromptTokens)
		for keep := 1; keep < len(j.a.OutputTokens) && found < 2; keep++ {
			l := logitsAt(t, m, seq, pl-1+keep)
			var stop float64
			var stopLogit float32 = -1e30
			for _, st := range m.StopTokens() {
				stop = max(stop, softmaxProb(l, st))
				stopLogit = max(stopLogit, l[st])
			}
			margin := float64(l[seq[pl+keep]] - stopLogit)
			if stop < verify.DefaultTolerance.MinStopProb || margin <= verify.DefaultStopLogitSlack {
				continue
			}
			a := clone(j.a)
			a.OutputTokens = a.OutputTokens[:keep]
			a.Stop = string(engine.StopEOS)
			recommitAll(t, m, a)
			a = inexact(t, m, a)
			exp := j.exp
			exp.Result = nil // the cut output's text is not the job's
			rep, err := verify.Recompute(ctx, m, a, exp, 1, verify.DefaultTolerance)
			if !errors.Is(err, verify.ErrReplay) || !strings.Contains(err.Error(), "largest logit") {
				t.Fatalf("greedy truncation after %d tokens (margin %.3g): %v, want ErrReplay naming the logit", keep, margin, err)
			}
			notExact(t, rep)
			tol := verify.DefaultTolerance
			tol.StopLogitSlack = margin + 0.01
			if _, err := verify.Recompute(ctx, m, a, exp, 1, tol); err != nil {
				t.Fatalf("greedy truncation after %d tokens, slack past its margin %.3g: %v, want a pass", keep, margin, err)
			}
			found++
		}
	}
	if found < 2 {
		t.Fatalf("found %d greedy cuts with a plausible stop more than the slack below the argmax, want 2", found)
	}
}
