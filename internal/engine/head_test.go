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

// TestPrefillHeadMatchesHead: the logits of the batched head
// (PrefillHiddenLogitsFrom: the classifier multiplied with every needed
// token of a batch at once, blocked kernels, rows spread over the
// session's threads) are bit for bit those Forward's Head computes one
// token at a time, for a float32 classifier (tolstoy-1m), Q8_0 and the
// K-quants (Q4_K_M: a Q6_K classifier; Q4_K), with 1 and 2 threads; logits
// come for the positions from logitsFrom on only (first position, mid
// batch, the last position alone), and hidden states for every position.
func TestPrefillHeadMatchesHead(t *testing.T) {
	wide := newRandomModel(&tinyWeights{dim: 256, hidden: 512, layers: 2, heads: 4, kvHeads: 2, vocab: 262, seqLen: 96}, 7)
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
	models := map[string]*engine.Model{
		"tolstoy-1m F32": defaultModel(t),
		"Q8_0":           load(func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q8_0) }),
		"Q4_K_M":         load(func(b *bytes.Buffer) error { return src.WriteGGUFMix(b, "Q4_K_M") }),
		"Q4_K":           load(func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q4_K) }),
	}
	tokens := make([]int, 75) // three batches, the last one partial
	for i := range tokens {
		tokens[i] = (i*41 + 3) % 262
	}
	ctx := context.Background()
	for name, m := range models {
		one, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: len(tokens)})
		if err != nil {
			t.Fatal(err)
		}
		var want [][]float32
		for pos, tk := range tokens {
			l, err := one.Forward(tk, pos)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, slices.Clone(l))
		}
		one.Close()
		for _, threads := range []int{1, 2} {
			for _, from := range []int{0, 37, len(tokens) - 1} {
				s, err := m.NewSession(engine.SessionOptions{Threads: threads, MaxPos: len(tokens)})
				if err != nil {
					t.Fatal(err)
				}
				hidden, next := 0, from
				err = s.PrefillHiddenLogitsFrom(ctx, tokens, 0, from, func(int, []float32) { hidden++ }, func(pos int, l []float32) {
					if pos != next {
						t.Fatalf("%s, %d threads, from %d: logits of position %d, want %d", name, threads, from, pos, next)
					}
					if !slices.Equal(l, want[pos]) {
						t.Errorf("%s, %d threads, from %d: position %d: batched head's logits differ from Head's", name, threads, from, pos)
					}
					next++
				})
				s.Close()
				if err != nil {
					t.Fatal(err)
				}
				if next != len(tokens) || hidden != len(tokens) {
					t.Errorf("%s, %d threads, from %d: logits up to %d, %d hidden states; want %d of each", name, threads, from, next, hidden, len(tokens))
				}
			}
		}
	}
}

// TestPrefillHiddenLogitsFromErrors: a logits start outside the prefilled
// positions, or a missing callback, is refused before anything is
// computed.
func TestPrefillHiddenLogitsFromErrors(t *testing.T) {
	m := defaultModel(t)
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	f := func(int, []float32) {}
	tokens := []int{1, 2, 3}
	if err := s.PrefillHiddenLogitsFrom(ctx, tokens, 0, 3, f, f); !errors.Is(err, engine.ErrPosition) {
		t.Errorf("logits from past the tokens: %v", err)
	}
	if err := s.PrefillHiddenLogitsFrom(ctx, tokens, 0, -1, f, f); !errors.Is(err, engine.ErrPosition) {
		t.Errorf("logits from before the tokens: %v", err)
	}
	if err := s.PrefillHiddenLogitsFrom(ctx, tokens, 0, 0, nil, f); !errors.Is(err, engine.ErrBuffer) {
		t.Errorf("no hidden callback: %v", err)
	}
	// Nothing was filled: position 1 still needs position 0.
	if _, err := s.Forward(1, 1); !errors.Is(err, engine.ErrPosition) {
		t.Errorf("Forward at 1 after refused prefills: %v", err)
	}
}
