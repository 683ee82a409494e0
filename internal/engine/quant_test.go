package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// newWide is a random model whose rows are whole K-quant super-blocks
// (dim 256, hidden 512), with grouped-query attention and a separate
// classifier, over tinyTokenizer's 262 tokens.
func newWide(seed uint64) *tinyWeights {
	return newRandomModel(&tinyWeights{dim: 256, hidden: 512, layers: 2, heads: 4, kvHeads: 2, vocab: 262, seqLen: 16}, seed)
}

// dequantizedWeights reads a GGUF file written by WriteGGUF back into
// float32 weights by dequantising every tensor with gguf.Dequantize, so
// that run.c's transcription (tinyWeights.forward) can run what the file
// holds.
func dequantizedWeights(t *testing.T, data []byte, like *tinyWeights) *tinyWeights {
	t.Helper()
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) []float32 {
		ti, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		v := make([]float32, ti.Elements())
		if err := gguf.Dequantize(ti.Type, v, f.TensorData(ti)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	w := *like
	w.emb = get("token_embd.weight")
	w.cls = w.emb
	if !w.shared {
		w.cls = get("output.weight")
	}
	w.final = get("output_norm.weight")
	cat := func(suffix string) []float32 {
		var v []float32
		for i := range w.layers {
			v = append(v, get(fmt.Sprintf("blk.%d.%s.weight", i, suffix))...)
		}
		return v
	}
	w.attnNorm, w.ffnNorm = cat("attn_norm"), cat("ffn_norm")
	w.wq, w.wk, w.wv, w.wo = cat("attn_q"), cat("attn_k"), cat("attn_v"), cat("attn_output")
	w.w1, w.w2, w.w3 = cat("ffn_gate"), cat("ffn_down"), cat("ffn_up")
	return &w
}

// actRounding is what the engine does to a matrix product's input for a
// model of the given tensor types: quantise it to Q8_K (the K-quants) or
// to Q8_0/Q8_1 blocks (Q8_0 and the legacy types), whose values the
// reference then multiplies in float32; nothing for float matrices.
func actRounding(dtype string) func([]float32) []float32 {
	switch {
	case strings.Contains(dtype, "_K"):
		return func(x []float32) []float32 {
			var a gguf.Q8K
			a.Quantize(x)
			out := make([]float32, len(x))
			for j := range out {
				out[j] = a.D[j/gguf.QK] * float32(a.Qs[j])
			}
			return out
		}
	case strings.HasPrefix(dtype, "Q"):
		return func(x []float32) []float32 {
			var a gguf.Q8Blocks
			a.Quantize(x)
			out := make([]float32, len(x))
			for j := range out {
				out[j] = a.D[j/gguf.Q8_0BlockSize] * float32(a.Qs[j])
			}
			return out
		}
	}
	return nil
}

// TestQuantizedModelsMatchDequantized writes a random model in every
// implemented type and in llama.cpp's Q4_K_M mix, loads it, and compares
// the engine's logits over several positions with run.c's transcription
// run on the file's dequantised weights, with each matrix product's input
// rounded to the values of its 8-bit form (actRounding), since the engine
// multiplies quantised matrices with quantised activations as llama.cpp
// does. Where the two round every activation the same way they differ
// only by float32 summation order (measured: at most 2.3e-5 on logits up
// to about 29); but their inputs differ by that rounding too, so an
// activation within it of a rounding midpoint can round differently, and
// this random model amplifies that one quant step to logit differences of
// up to 0.35 at that position and the later ones. So the test asks for
// 2e-4 of the largest logit at the best position (one without such a
// flip) and 3% at every position. Q4_1 and Q5_1 take
// the minimum's term from block_q8_1's float16 s = d·Σq, which the
// reference does not model (measured 0.73): they get only the 3% bound.
// Without the activation rounding in the engine every quantised type
// differs from this reference by 0.2 to 2.3 at every position. It also logs how far
// each type is from the unquantised model; random weights of this size
// amplify any perturbation, so that is no measure of a type's quality
// (TestGGUFQuantized measures it on tolstoy-1m, and gguf's
// TestQuantizeRoundTrip per type).
func TestQuantizedModelsMatchDequantized(t *testing.T) {
	w := newWide(7)
	src, err := engine.LoadLlama2C(w.v0(), tinyTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	exact := w.forward([]int{1, 260, 7, 100})
	tokens := []int{1, 260, 7, 100}
	for _, tc := range []struct {
		name  string
		write func(*bytes.Buffer) error
		dtype string
	}{
		{"BF16", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.BF16) }, "BF16"},
		{"Q8_0", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q8_0) }, "Q8_0"},
		{"Q6_K", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q6_K) }, "Q6_K"},
		{"Q5_0", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q5_0) }, "Q5_0"},
		{"Q5_1", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q5_1) }, "Q5_1"},
		{"Q5_K", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q5_K) }, "Q5_K"},
		{"Q4_0", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q4_0) }, "Q4_0"},
		{"Q4_1", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q4_1) }, "Q4_1"},
		{"Q4_K", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q4_K) }, "Q4_K"},
		{"Q4_K_M", func(b *bytes.Buffer) error { return src.WriteGGUFMix(b, "Q4_K_M") }, "Q4_K+Q6_K"},
		{"Q5_K_M", func(b *bytes.Buffer) error { return src.WriteGGUFMix(b, "Q5_K_M") }, "Q5_K+Q6_K"},
		{"Q3_K", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q3_K) }, "Q3_K"},
		{"Q2_K", func(b *bytes.Buffer) error { return src.WriteGGUF(b, gguf.Q2_K) }, "Q2_K"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b); err != nil {
				t.Fatal(err)
			}
			m, err := engine.LoadGGUF(b.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if m.TensorType() != tc.dtype {
				t.Errorf("TensorType() = %q, want %q", m.TensorType(), tc.dtype)
			}
			dw := dequantizedWeights(t, b.Bytes(), w)
			dw.actRound = actRounding(tc.dtype)
			want := dw.forward(tokens)
			s, err := m.NewSession(engine.SessionOptions{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var worst, drift, scale float64
			best := math.Inf(1)
			for pos, tk := range tokens {
				got, err := s.Forward(tk, pos)
				if err != nil {
					t.Fatal(err)
				}
				var here float64
				for i := range got {
					here = max(here, math.Abs(float64(got[i]-want[pos][i])))
					drift = max(drift, math.Abs(float64(got[i]-exact[pos][i])))
					scale = max(scale, math.Abs(float64(want[pos][i])))
				}
				worst, best = max(worst, here), min(best, here)
			}
			t.Logf("%s: %d bytes; logits within %.2g of the dequantised reference (%.2g at the best position; largest logit %.1f), %.3g of F32", tc.name, b.Len(), worst, best, scale, drift)
			if withS := tc.dtype == "Q4_1" || tc.dtype == "Q5_1"; !withS && best > 2e-4*scale {
				t.Errorf("logits differ from the dequantised reference by %g at every position (largest logit %g)", best, scale)
			}
			if worst > 0.03*scale {
				t.Errorf("logits differ from the dequantised reference by %g (largest logit %g)", worst, scale)
			}
			// The whole path: generation runs and stops where asked.
			res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "ab", MaxTokens: 5, Temperature: 0}, nil)
			if err != nil || len(res.Tokens) == 0 {
				t.Fatalf("Generate: %v, %d tokens", err, len(res.Tokens))
			}
		})
	}
}

// TestQ4KMMix checks the tensor types of a Q4_K_M file against llama.cpp's
// rule: Q6_K for the classifier, and for attn_v and ffn_down in layers
// where use_more_bits(i, n) (i < n/8, i >= 7n/8, or (i - n/8) % 3 == 2).
func TestQ4KMMix(t *testing.T) {
	w := newRandomModel(&tinyWeights{dim: 256, hidden: 256, layers: 8, heads: 4, kvHeads: 4, vocab: 262, seqLen: 8}, 3)
	src, err := engine.LoadLlama2C(w.v0(), tinyTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := src.WriteGGUFMix(&b, "Q4_K_M"); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]gguf.TensorType{"output.weight": gguf.Q6_K, "token_embd.weight": gguf.Q4_K}
	// n = 8: layers 0 (i < 1), 7 (i >= 7) and 3, 6 ((i-1) % 3 == 2).
	for i := range 8 {
		typ := gguf.Q4_K
		if i == 0 || i == 3 || i == 6 || i == 7 {
			typ = gguf.Q6_K
		}
		want[fmt.Sprintf("blk.%d.attn_v.weight", i)] = typ
		want[fmt.Sprintf("blk.%d.ffn_down.weight", i)] = typ
		want[fmt.Sprintf("blk.%d.attn_q.weight", i)] = gguf.Q4_K
		want[fmt.Sprintf("blk.%d.ffn_up.weight", i)] = gguf.Q4_K
	}
	for name, typ := range want {
		ti, ok := f.Tensor(name)
		if !ok || ti.Type != typ {
			t.Errorf("%s: %v (present %v), want %s", name, ti.Type, ok, typ)
		}
	}
	if ft, _ := f.Uint("general.file_type"); ft != 15 {
		t.Errorf("general.file_type %d, want 15 (LLAMA_FTYPE_MOSTLY_Q4_K_M)", ft)
	}
	if err := src.WriteGGUFMix(&b, "Q4_K_X"); !errors.Is(err, engine.ErrUnsupported) {
		t.Errorf("unknown mix: %v", err)
	}
}

// TestKQuantFallback: tolstoy-1m's rows (128 and 384 values) are not whole
// 256-value super-blocks, so a Q4_K export stores its matrices as Q5_0,
// as llama-quantize does, and the model still runs.
func TestKQuantFallback(t *testing.T) {
	data := tolstoyGGUF(t, gguf.Q4_K)
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if ti, _ := f.Tensor("blk.0.ffn_down.weight"); ti.Type != gguf.Q5_0 {
		t.Errorf("ffn_down stored as %s, want Q5_0", ti.Type)
	}
	m, err := engine.LoadGGUF(data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: reference[0].prompt, MaxTokens: 8, Temperature: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := ids(reference[0].generated)[0]; res.Tokens[0] != want {
		t.Errorf("first greedy token %d, F32 reference %d", res.Tokens[0], want)
	}
}

// TestQuantizedForwardDoesNotAllocate: a forward step on quantised
// matrices (the fused Q4_K/Q6_K kernels, and Q3_K through the generic
// decoder) allocates nothing, as the float32 path.
func TestQuantizedForwardDoesNotAllocate(t *testing.T) {
	src, err := engine.LoadLlama2C(newWide(3).v0(), tinyTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []gguf.TensorType{gguf.Q4_K, gguf.Q6_K, gguf.Q3_K} {
		var b bytes.Buffer
		if err := src.WriteGGUF(&b, typ); err != nil {
			t.Fatal(err)
		}
		m, err := engine.LoadGGUF(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		s, err := m.NewSession(engine.SessionOptions{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		pos := 0
		if _, err := s.Forward(1, pos); err != nil {
			t.Fatal(err)
		}
		n := testing.AllocsPerRun(5, func() {
			pos++
			if _, err := s.Forward(7, pos); err != nil {
				t.Fatal(err)
			}
		})
		s.Close()
		if n != 0 {
			t.Errorf("%s: %v allocations per position", typ, n)
		}
	}
}
