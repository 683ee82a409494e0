package engine_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// sentinels are the errors a loader may return for bad input; anything
// else (or a panic) is a bug.
var sentinels = []error{
	engine.ErrTruncated, engine.ErrSizeMismatch, engine.ErrInvalidHeader, engine.ErrUnknownFormat,
	engine.ErrUnsupported, engine.ErrTokenizer, engine.ErrVocabMismatch,
}

func checkLoad(t *testing.T, m *engine.Model, err error) {
	t.Helper()
	if err != nil {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error without a sentinel: %v", err)
	}
	// A model that loads must run.
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logits, err := s.Forward(m.Tokenizer().BOS(), 0)
	if err != nil || len(logits) != m.Config().VocabSize {
		t.Fatalf("forward: %v, %d logits", err, len(logits))
	}
}

// FuzzLoadLlama2C feeds arbitrary checkpoints (with a valid tokenizer):
// loading must fail with a sentinel error or give a model that runs.
func FuzzLoadLlama2C(f *testing.F) {
	tok := microTokenizer()
	for _, shared := range []bool{true, false} {
		w := newMicro(shared, 9)
		f.Add(w.v0())
		f.Add(w.v1())
		f.Add(w.v0()[:40])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := engine.LoadLlama2C(data, tok)
		checkLoad(t, m, err)
	})
}

// FuzzLoadGGUF feeds arbitrary GGUF files: loading must fail with a
// sentinel error or give a model that runs.
func FuzzLoadGGUF(f *testing.F) {
	for _, shared := range []bool{true, false} {
		src, err := engine.LoadLlama2C(newMicro(shared, 11).v0(), microTokenizer())
		if err != nil {
			f.Fatal(err)
		}
		for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.BF16} {
			var b bytes.Buffer
			if err := src.WriteGGUF(&b, typ); err != nil {
				f.Fatal(err)
			}
			f.Add(b.Bytes())
			if typ == gguf.F32 {
				f.Add(variantSeed(f, b.Bytes(), "qwen2"))
				f.Add(variantSeed(f, b.Bytes(), "gpt2"))
			}
		}
	}
	f.Add([]byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := engine.LoadGGUF(data)
		checkLoad(t, m, err)
	})
}

// variantSeed rewrites a micro GGUF model as a qwen2 model with QKV biases
// ("qwen2") or with a byte-level BPE vocabulary of the same six tokens
// ("gpt2"), so that the fuzzer starts from the loaders' newer paths.
func variantSeed(f *testing.F, data []byte, variant string) []byte {
	f.Helper()
	p, err := gguf.Parse(data)
	if err != nil {
		f.Fatal(err)
	}
	w := &gguf.Writer{}
	for _, kv := range p.KVs {
		key := kv.Key
		switch {
		case variant == "qwen2" && len(key) > 6 && key[:6] == "llama.":
			key = "qwen2." + key[6:]
		case variant == "gpt2" && (key == "tokenizer.ggml.scores" || key == "tokenizer.ggml.add_space_prefix" || key == "tokenizer.ggml.unknown_token_id"):
			continue
		}
		w.Set(key, kv.Value)
	}
	switch variant {
	case "qwen2":
		w.Set("general.architecture", "qwen2")
		kv := uint64(2) // micro: dim 4, 2 heads, 1 KV head
		for _, b := range []struct {
			name string
			n    uint64
		}{{"attn_q", 4}, {"attn_k", kv}, {"attn_v", kv}} {
			if err := w.AddTensor("blk.0."+b.name+".bias", gguf.F32, []uint64{b.n}, make([]byte, 4*b.n)); err != nil {
				f.Fatal(err)
			}
		}
	case "gpt2":
		w.Set("tokenizer.ggml.model", "gpt2")
		w.Set("tokenizer.ggml.pre", "llama-bpe")
		w.Set("tokenizer.ggml.tokens", []string{"a", "b", "ab", "\u0120", "<|eot|>", "c"})
		w.Set("tokenizer.ggml.token_type", []int32{1, 1, 1, 1, 3, 1})
		w.Set("tokenizer.ggml.merges", []string{"a b"})
		w.Set("tokenizer.ggml.bos_token_id", uint32(4))
		w.Set("tokenizer.ggml.eos_token_id", uint32(4))
	}
	for _, ti := range p.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, p.TensorData(ti)); err != nil {
			f.Fatal(err)
		}
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		f.Fatal(err)
	}
	if _, err := engine.LoadGGUF(b.Bytes()); err != nil {
		f.Fatalf("%s seed does not load: %v", variant, err)
	}
	return b.Bytes()
}
