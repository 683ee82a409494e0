package engine_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// TestPrefillMatchesForward: positions computed by Prefill (batches of
// tokens through each layer together) give bit for bit the logits of
// positions computed one at a time by Forward, across batch boundaries,
// after positions already in the cache (from Forward or from a short first
// Prefill, which sizes the batches), with 1 and 2 threads, for float32
// (tolstoy-1m, run.c-exact), Q4_K_M, Q8_0 and Q4_0 matrices and a qwen2
// model (biases, NEOX rotary).
func TestPrefillMatchesForward(t *testing.T) {
	wide := newRandomModel(&tinyWeights{dim: 256, hidden: 512, layers: 2, heads: 4, kvHeads: 2, vocab: 262, seqLen: 96}, 3)
	src, err := engine.LoadLlama2C(wide.v0(), tinyTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	load := func(write func(*bytes.Buffer) error) *engine.Model {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		m, err := engine.LoadGGUF(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	q := newRandomModel(&tinyWeights{dim: 64, hidden: 128, layers: 2, heads: 4, kvHeads: 2, vocab: 262, seqLen: 96}, 5)
	qwen, err := engine.LoadGGUF(variantGGUF(t, q, "qwen2"))
	if err != nil {
		t.Fatal(err)
	}
	models := map[string]*engine.Model{
		"tolstoy-1m F32": defaultModel(t),
		"Q4_K_M":         load(func(b *bytes.Buffer) error { return src.WriteGGUFMix(b, "Q4_K_M") }),
		"Q8_0":           load(func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q8_0) }),
		"Q4_0":           load(func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q4_0) }),
		"qwen2":          qwen,
	}
	tokens := make([]int, 75) // three batches, the last one partial
	for i := range tokens {
		tokens[i] = (i*37 + 11) % 262
	}
	for name, m := range models {
		for _, threads := range []int{1, 2} {
			one, _ := m.NewSession(engine.SessionOptions{Threads: threads})
			var want []float32
			for pos, tk := range tokens {
				l, err := one.Forward(tk, pos)
				if err != nil {
					t.Fatal(err)
				}
				want = slices.Clone(l)
			}
			one.Close()
			last := len(tokens) - 1
			// Prefill from position 0; after 5 positions of Forward; and
			// after a first Prefill of 3 tokens, which sizes the session's
			// batches to 3 tokens.
			for _, split := range []int{0, 5, -3} {
				s, _ := m.NewSession(engine.SessionOptions{Threads: threads})
				if split < 0 {
					split = -split
					if err := s.Prefill(context.Background(), tokens[:split], 0); err != nil {
						t.Fatal(err)
					}
				} else {
					for pos := range split {
						if _, err := s.Forward(tokens[pos], pos); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := s.Prefill(context.Background(), tokens[split:last], split); err != nil {
					t.Fatal(err)
				}
				got, err := s.Forward(tokens[last], last)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s, %d threads, Prefill from %d: logits differ from Forward's", name, threads, split)
				}
				s.Close()
			}
		}
	}
}

// TestPrefillErrors: bad input is refused before anything is computed.
func TestPrefillErrors(t *testing.T) {
	m := defaultModel(t)
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Prefill(ctx, []int{1, 2, -1}, 0); !errors.Is(err, engine.ErrTokenID) {
		t.Errorf("bad token: %v", err)
	}
	if err := s.Prefill(ctx, []int{1}, 3); !errors.Is(err, engine.ErrPosition) {
		t.Errorf("gap before the first position: %v", err)
	}
	if err := s.Prefill(ctx, make([]int, 41), 0); !errors.Is(err, engine.ErrPosition) {
		t.Errorf("past MaxPos: %v", err)
	}
	// Nothing was filled: position 1 still needs position 0.
	if _, err := s.Forward(1, 1); !errors.Is(err, engine.ErrPosition) {
		t.Errorf("Forward at 1 after refused prefills: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Prefill(cctx, []int{1, 2}, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	part, err := m.NewSession(engine.SessionOptions{Threads: 1, FirstLayer: 0, LastLayer: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	if err := part.Prefill(ctx, []int{1}, 0); !errors.Is(err, engine.ErrLayerRange) {
		t.Errorf("partial session: %v", err)
	}
}
