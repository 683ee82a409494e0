package engine_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

func f32Data(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// variantGGUF writes w (a llama model) as GGUF and rewrites it into a
// variant: qwen2 with QKV biases, or llama with linear RoPE scaling and
// rope_freqs factors, filling the variant's fields of w so that
// w.forward (run.c's transcription) computes the same model.
func variantGGUF(t *testing.T, w *tinyWeights, variant string) []byte {
	t.Helper()
	src, err := engine.LoadLlama2C(w.v0(), tinyTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := src.WriteGGUF(&b, gguf.F32); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64()) * 0.5
		}
		return v
	}
	kv := w.dim / w.heads * w.kvHeads
	hs := w.dim / w.heads
	data := rewriteGGUF(t, b.Bytes(), func(kvs map[string]any, _ map[string]*gguf.TensorInfo) {
		switch variant {
		case "qwen2":
			for k, v := range kvs {
				if len(k) > 6 && k[:6] == "llama." {
					delete(kvs, k)
					kvs["qwen2."+k[6:]] = v
				}
			}
			kvs["general.architecture"] = "qwen2"
		case "scaled":
			kvs["llama.rope.scaling.type"] = "linear"
			kvs["llama.rope.scaling.factor"] = float32(4)
		}
	})
	wr := &gguf.Writer{}
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range f.KVs {
		wr.Set(kv.Key, kv.Value)
	}
	for _, ti := range f.Tensors {
		if err := wr.AddTensor(ti.Name, ti.Type, ti.Dims, f.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	switch variant {
	case "qwen2":
		w.neox = true
		w.bq, w.bk, w.bv = rnd(w.layers*w.dim), rnd(w.layers*kv), rnd(w.layers*kv)
		for l := range w.layers {
			for _, bt := range []struct {
				name string
				v    []float32
				n    int
			}{{"attn_q", w.bq, w.dim}, {"attn_k", w.bk, kv}, {"attn_v", w.bv, kv}} {
				name := "blk." + string(rune('0'+l)) + "." + bt.name + ".bias"
				if err := wr.AddTensor(name, gguf.F32, []uint64{uint64(bt.n)}, f32Data(bt.v[l*bt.n:(l+1)*bt.n])); err != nil {
					t.Fatal(err)
				}
			}
		}
	case "scaled":
		w.ropeScale = 1.0 / 4
		w.ropeFactors = make([]float32, hs/2)
		for i := range w.ropeFactors {
			w.ropeFactors[i] = 1 + float32(i) // Llama 3.1 style: low frequencies slowed more
		}
		if err := wr.AddTensor("rope_freqs.weight", gguf.F32, []uint64{uint64(hs / 2)}, f32Data(w.ropeFactors)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := wr.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestArchitectureVariants runs a qwen2 model (QKV biases, NEOX rotary
// layout, grouped-query attention, separate classifier) and a llama model
// with linear RoPE scaling and Llama 3.1-style rope_freqs factors, and
// compares every logit at 8 positions bit for bit with run.c's
// transcription extended by the same three features. Each model is also
// written back with WriteGGUF and reloaded, giving the same logits.
func TestArchitectureVariants(t *testing.T) {
	tokens := []int{1, 260, 7, 100, 5, 261, 3, 42}
	for _, variant := range []string{"qwen2", "scaled"} {
		t.Run(variant, func(t *testing.T) {
			w := newTiny(false, 21)
			data := variantGGUF(t, w, variant)
			m, err := engine.LoadGGUF(data)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := m.WriteGGUF(&b, gguf.F32); err != nil {
				t.Fatal(err)
			}
			m2, err := engine.LoadGGUF(b.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if m2.Config() != m.Config() {
				t.Errorf("rewritten config %+v, was %+v", m2.Config(), m.Config())
			}
			want := w.forward(tokens)
			plain := newTiny(false, 21).forward(tokens)
			for _, mm := range []*engine.Model{m, m2} {
				s, err := mm.NewSession(engine.SessionOptions{Threads: 2})
				if err != nil {
					t.Fatal(err)
				}
				differs := false
				for pos, tk := range tokens {
					got, _ := s.Forward(tk, pos)
					for i := range got {
						if got[i] != want[pos][i] {
							t.Fatalf("pos %d logit %d: %v, reference %v", pos, i, got[i], want[pos][i])
						}
						differs = differs || got[i] != plain[pos][i]
					}
				}
				s.Close()
				if !differs {
					t.Error("the variant computes the same logits as the plain llama model")
				}
			}
		})
	}
}

func TestArchitectureRefusals(t *testing.T) {
	w := newTiny(true, 3)
	src, err := engine.LoadLlama2C(w.v0(), tinyTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := src.WriteGGUF(&b, gguf.F32); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(map[string]any)
		want error
	}{
		{"gemma", func(k map[string]any) { k["general.architecture"] = "gemma" }, engine.ErrUnsupported},
		{"yarn", func(k map[string]any) { k["llama.rope.scaling.type"] = "yarn" }, engine.ErrUnsupported},
		{"linear without factor", func(k map[string]any) { k["llama.rope.scaling.type"] = "linear" }, engine.ErrInvalidHeader},
		{"scaling type not a string", func(k map[string]any) { k["llama.rope.scaling.type"] = uint32(1) }, engine.ErrInvalidHeader},
	} {
		data := rewriteGGUF(t, b.Bytes(), func(kvs map[string]any, _ map[string]*gguf.TensorInfo) { c.edit(kvs) })
		if _, err := engine.LoadGGUF(data); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A sliding window shorter than the context caps the context.
	data := rewriteGGUF(t, b.Bytes(), func(kvs map[string]any, _ map[string]*gguf.TensorInfo) {
		kvs["llama.attention.sliding_window"] = uint32(10)
	})
	m, err := engine.LoadGGUF(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config().SeqLen != 10 {
		t.Errorf("context %d with a 10-position window", m.Config().SeqLen)
	}
}
