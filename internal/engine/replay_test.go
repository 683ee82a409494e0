package engine_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
)

// TestPrefillLogitsReplayTheGeneration: the logits of one prefill over
// the prompt and the output (PrefillHiddenLogits) fed to a sampler made
// with the generation's parameters (Result.Sampling) draw exactly the
// generated tokens, and then a stop where the generation stopped; the
// hidden states are those of PrefillHidden. What a verifier's replay
// (internal/verify) relies on.
func TestPrefillLogitsReplayTheGeneration(t *testing.T) {
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		temp, topP float32
		seed       uint64
	}{{0, 0, 0}, {0.8, 0, 3}, {1, 0.9, 4}, {1.5, 0.5, 0}} {
		res, err := m.Generate(ctx, engine.GenerateRequest{Prompt: "The old prince", MaxTokens: 60, Temperature: c.temp, TopP: c.topP, Seed: c.seed, Threads: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := engine.NormalizeSampling(c.temp, c.topP, c.seed)
		want.MaxTokens = 60
		if res.Sampling != want {
			t.Fatalf("result's sampling %+v, want %+v", res.Sampling, want)
		}
		seq := append(slices.Clone(res.PromptTokens), res.Tokens...)
		p, n := len(res.PromptTokens), len(res.Tokens)
		s, err := m.NewSession(engine.SessionOptions{Threads: 2, MaxPos: len(seq)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Prefill(ctx, seq[:p-1], 0); err != nil {
			t.Fatal(err)
		}
		sp := res.Sampling
		smp, err := engine.NewSampler(m.Config().VocabSize, sp.Temperature, sp.TopP, sp.Seed)
		if err != nil {
			t.Fatal(err)
		}
		var drawn []int
		var hidden int
		err = s.PrefillHiddenLogits(ctx, seq[p-1:], p-1, func(int, []float32) { hidden++ }, func(pos int, l []float32) {
			drawn = append(drawn, smp.Sample(slices.Clone(l)))
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if hidden != n+1 || !slices.Equal(drawn[:n], res.Tokens) {
			t.Fatalf("T %v: replay drew %v, generated %v (%d hidden states)", c.temp, drawn[:n], res.Tokens, hidden)
		}
		if stop := drawn[n]; res.Stop == engine.StopEOS && !slices.Contains(m.StopTokens(), stop) {
			t.Fatalf("T %v: stopped at eos, the replay draws %d", c.temp, stop)
		}
	}
}

// TestSamplerSkipKeepsTheStream: skipping a draw advances the stream as a
// draw does (one coin at a positive temperature, none when greedy), so a
// verifier replaying only some positions draws what the generation drew.
func TestSamplerSkipKeepsTheStream(t *testing.T) {
	logits := make([]float32, 64)
	for i := range logits {
		logits[i] = float32(i%7) * 0.3
	}
	for _, temp := range []float32{0, 0.9} {
		a, _ := engine.NewSampler(len(logits), temp, 0.95, 11)
		b, _ := engine.NewSampler(len(logits), temp, 0.95, 11)
		var all, replayed []int
		for i := range 50 {
			all = append(all, a.Sample(slices.Clone(logits)))
			if i%3 == 2 {
				replayed = append(replayed, b.Sample(slices.Clone(logits)))
			} else {
				b.Skip()
			}
		}
		for i, got := range replayed {
			if want := all[3*i+2]; got != want {
				t.Fatalf("T %v: draw %d after skips is %d, want %d", temp, 3*i+2, got, want)
			}
		}
	}
}

// TestGreedyTakesTheLowestOfEqualMaxima: at temperature 0 the sampler is
// the argmax, ties to the lowest id, and draws no coin: the rule a
// verifier's replay of a greedy job relies on.
func TestGreedyTakesTheLowestOfEqualMaxima(t *testing.T) {
	s, err := engine.NewSampler(6, 0, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		logits []float32
		want   int
	}{
		{[]float32{0, 3, 1, 3, 3, -1}, 1},
		{[]float32{5, 5, 5, 5, 5, 5}, 0},
		{[]float32{-2, -1, -1, -3, 0, 0}, 4},
	} {
		if got := s.Sample(slices.Clone(c.logits)); got != c.want {
			t.Errorf("greedy on %v: %d, want %d", c.logits, got, c.want)
		}
	}
}
