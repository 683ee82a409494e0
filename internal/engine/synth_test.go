package engine_test

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// TestWriteSyntheticModel writes a random-weight llama model of about a
// billion parameters as Q4_K_M (the mix WriteGGUFMix writes, quantised
// tensor by tensor, so no float32 copy of the whole model is held) for
// the speed measurements of docs/PERFORMANCE.md: AITBC_SYNTH_GGUF names
// the file. The weights are random (scaled 0.02, norms 1) and the
// vocabulary is the 262-token test vocabulary, so the model says nothing;
// the shape is Llama 3.2 1B's without its 128k vocabulary (dim 2048,
// hidden 8192, 16 layers, 32 heads, 8 KV heads): 0.97 B parameters in the
// layers. AITBC_SYNTH_LAYERS overrides the layer count, and
// AITBC_SYNTH_TYPE=Q8_0 writes every matrix as Q8_0 instead of the mix.
func TestWriteSyntheticModel(t *testing.T) {
	path := os.Getenv("AITBC_SYNTH_GGUF")
	if path == "" {
		t.Skip("opt-in: AITBC_SYNTH_GGUF=file.gguf writes the ~1B synthetic model")
	}
	const dim, hidden, heads, kvHeads, vocab, ctx = 2048, 8192, 32, 8, 262, 512
	layers := 16
	if v, err := strconv.Atoi(os.Getenv("AITBC_SYNTH_LAYERS")); err == nil && v > 0 {
		layers = v
	}
	// Metadata (tokenizer included) from a small model the engine writes,
	// with the shape changed.
	small := newRandomModel(&tinyWeights{dim: 64, hidden: 128, layers: 2, heads: 4, kvHeads: 2, vocab: vocab, seqLen: ctx}, 1)
	src, err := engine.LoadLlama2C(small.v0(), tinyTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := src.WriteGGUF(&sb, gguf.F32); err != nil {
		t.Fatal(err)
	}
	meta, err := gguf.Parse([]byte(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	w := &gguf.Writer{}
	shape := map[string]any{
		"llama.embedding_length": uint32(dim), "llama.feed_forward_length": uint32(hidden),
		"llama.block_count": uint32(layers), "llama.attention.head_count": uint32(heads),
		"llama.attention.head_count_kv": uint32(kvHeads), "llama.rope.dimension_count": uint32(dim / heads),
		"llama.context_length": uint32(ctx), "general.file_type": uint32(15),
	}
	allQ8 := os.Getenv("AITBC_SYNTH_TYPE") == "Q8_0"
	if allQ8 {
		shape["general.file_type"] = uint32(7)
	}
	for _, kv := range meta.KVs {
		if v, ok := shape[kv.Key]; ok {
			w.Set(kv.Key, v)
			continue
		}
		w.Set(kv.Key, kv.Value)
	}
	r := rand.New(rand.NewPCG(2026, 11))
	add := func(name string, typ gguf.TensorType, rows, cols int, scale float32) {
		if allQ8 && typ != gguf.F32 {
			typ = gguf.Q8_0
		}
		vals := make([]float32, rows*cols)
		for i := range vals {
			vals[i] = scale * float32(r.NormFloat64())
		}
		if scale == 0 {
			for i := range vals {
				vals[i] = 1
			}
		}
		n, _ := typ.RowSize(uint64(len(vals)))
		data := make([]byte, n)
		if err := gguf.Quantize(typ, data, vals); err != nil {
			t.Fatal(err)
		}
		dims := []uint64{uint64(cols), uint64(rows)}
		if rows == 1 {
			dims = dims[:1] // the norms are vectors
		}
		if err := w.AddTensor(name, typ, dims, data); err != nil {
			t.Fatal(err)
		}
	}
	kv := dim / heads * kvHeads
	moreBits := func(i int) bool { return i < layers/8 || i >= 7*layers/8 || (i-layers/8)%3 == 2 }
	add("token_embd.weight", gguf.Q4_K, vocab, dim, 0.02)
	add("output_norm.weight", gguf.F32, 1, dim, 0)
	add("output.weight", gguf.Q6_K, vocab, dim, 0.02)
	for l := range layers {
		p := "blk." + strconv.Itoa(l) + "."
		six := gguf.Q4_K
		if moreBits(l) {
			six = gguf.Q6_K
		}
		add(p+"attn_norm.weight", gguf.F32, 1, dim, 0)
		add(p+"ffn_norm.weight", gguf.F32, 1, dim, 0)
		add(p+"attn_q.weight", gguf.Q4_K, dim, dim, 0.02)
		add(p+"attn_k.weight", gguf.Q4_K, kv, dim, 0.02)
		add(p+"attn_v.weight", six, kv, dim, 0.02)
		add(p+"attn_output.weight", gguf.Q4_K, dim, dim, 0.02)
		add(p+"ffn_gate.weight", gguf.Q4_K, hidden, dim, 0.02)
		add(p+"ffn_up.weight", gguf.Q4_K, hidden, dim, 0.02)
		add(p+"ffn_down.weight", six, dim, hidden, 0.02)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	if _, err := w.WriteTo(bw); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := engine.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	t.Logf("%s: %d layers, dim %d, %s", path, m.Config().Layers, m.Config().Dim, m.TensorType())
}
