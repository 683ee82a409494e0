package engine_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
)

// TestPrefillHiddenReproducesGeneration: the hidden states a verifier
// recomputes by one batched prefill are bit for bit those the generation
// hook saw, on another thread count (what verifiable inference relies on).
func TestPrefillHiddenReproducesGeneration(t *testing.T) {
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	var gen [][]float32
	var genPos []int
	res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "Once upon", MaxTokens: 70, Temperature: 0.9, Seed: 3, Threads: 1,
		Hidden: func(pos int, h []float32) { gen = append(gen, slices.Clone(h)); genPos = append(genPos, pos) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(gen) != len(res.Tokens) {
		t.Fatalf("%d hidden states for %d tokens", len(gen), len(res.Tokens))
	}
	seq := append(slices.Clone(res.PromptTokens), res.Tokens...)
	s, err := m.NewSession(engine.SessionOptions{Threads: 2, MaxPos: len(seq)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := len(res.PromptTokens)
	var got [][]float32
	err = s.PrefillHidden(context.Background(), seq[:len(seq)-1], 0, func(pos int, h []float32) {
		if pos >= p-1 {
			if pos != genPos[len(got)] {
				t.Fatalf("position %d, generation had %d", pos, genPos[len(got)])
			}
			got = append(got, slices.Clone(h))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(gen) {
		t.Fatalf("prefill gave %d hidden states, generation %d", len(got), len(gen))
	}
	for i := range gen {
		if !slices.Equal(got[i], gen[i]) {
			t.Fatalf("token %d: prefill's hidden state differs from generation's", i)
		}
	}
}

// TestPrefillLogitsMatchForward: the logits a verifier of a remote
// backend's log-probabilities recomputes by one batched prefill are bit
// for bit Forward's, position by position, across batch boundaries.
func TestPrefillLogitsMatchForward(t *testing.T) {
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]int, 70)
	for i := range tokens {
		tokens[i] = (i*53 + 7) % m.Config().VocabSize
	}
	one, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: len(tokens)})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	var want [][]float32
	for pos, tk := range tokens {
		l, err := one.Forward(tk, pos)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, slices.Clone(l))
	}
	s, err := m.NewSession(engine.SessionOptions{Threads: 2, MaxPos: len(tokens)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	err = s.PrefillLogits(context.Background(), tokens, 0, func(pos int, logits []float32) {
		if pos != n {
			t.Fatalf("position %d, want %d", pos, n)
		}
		if !slices.Equal(logits, want[pos]) {
			t.Fatalf("position %d: prefill's logits differ from Forward's", pos)
		}
		n++
	})
	if err != nil || n != len(tokens) {
		t.Fatalf("%d positions, err %v", n, err)
	}
	if err := s.PrefillLogits(context.Background(), tokens, 0, nil); err == nil {
		t.Error("no callback: accepted")
	}
}
