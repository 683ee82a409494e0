package engine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/models"
)

// TestTinyModelsMatchRunC checks the engine against the naive transcription
// of run.c for models with grouped-query attention, with a shared and a
// separate classifier, in both checkpoint versions.
func TestTinyModelsMatchRunC(t *testing.T) {
	tok := tinyTokenizer()
	tokens := []int{1, 259, 260, 261, 100, 3, 258, 7, 261, 261, 42, 0, 2, 9, 259, 200}
	for _, shared := range []bool{true, false} {
		w := newTiny(shared, 7)
		want := w.forward(tokens)
		for name, data := range map[string][]byte{"v0": w.v0(), "v1": w.v1()} {
			m, err := engine.LoadLlama2C(data, tok)
			if err != nil {
				t.Fatalf("shared=%v %s: %v", shared, name, err)
			}
			if c := m.Config(); c.KVHeads != 2 || c.SharedClassifier != shared {
				t.Fatalf("config %+v", c)
			}
			for _, threads := range []int{1, 2} {
				s, err := m.NewSession(engine.SessionOptions{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				for pos, tk := range tokens {
					got, err := s.Forward(tk, pos)
					if err != nil {
						t.Fatal(err)
					}
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[pos][i]) {
							t.Fatalf("shared=%v %s threads=%d pos %d logit %d: %v, run.c %v", shared, name, threads, pos, i, got[i], want[pos][i])
						}
					}
				}
				s.Close()
			}
		}
	}
}

// TestGGUFF32MatchesCheckpoint writes tolstoy-1m as an F32 GGUF and checks
// that it reproduces the reference ids exactly, loaded from memory and
// through Open (memory-mapped file).
func TestGGUFF32MatchesCheckpoint(t *testing.T) {
	data := tolstoyGGUF(t, gguf.F32)
	m, err := engine.LoadGGUF(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format() != engine.FormatGGUF || m.Config() != defaultModel(t).Config() {
		t.Fatalf("format %s config %+v", m.Format(), m.Config())
	}
	checkReference(t, m, 2)

	path := filepath.Join(t.TempDir(), "tolstoy.gguf")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fm, err := engine.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	checkReference(t, fm, 1)

	// The pieces are stored SentencePiece-style, with ▁ for spaces.
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Array("tokenizer.ggml.tokens")
	if toks := a.Values.([]string); toks[689] != "▁It" || toks[1] != "\n<s>\n" {
		t.Fatalf("token 689 %q, token 1 %q", toks[689], toks[1])
	}
	if _, ok := f.Tensor("output.weight"); ok {
		t.Fatal("a shared classifier must not be written as output.weight")
	}
	for _, name := range []string{"token_embd.weight", "blk.3.ffn_down.weight", "blk.0.attn_k.weight"} {
		ti, _ := f.Tensor(name)
		if ti.Type != gguf.F32 || len(ti.Dims) != 2 {
			t.Fatalf("%s: %+v", name, ti)
		}
	}
	if ti, _ := f.Tensor("blk.0.ffn_down.weight"); ti.Dims[0] != 384 || ti.Dims[1] != 128 {
		t.Fatalf("ffn_down dims %v, want [384 128] (innermost first)", ti.Dims)
	}
}

// TestGGUFQuantized runs tolstoy-1m from F16, BF16, Q8_0, Q5_x and Q4_x
// GGUF files (its rows are too short for the K-quants). They
// are lossy, so the test asks for close logits and mostly the same greedy
// tokens rather than identical ones.
func TestGGUFQuantized(t *testing.T) {
	ref := defaultModel(t)
	for _, tc := range []struct {
		typ        gguf.TensorType
		maxLogit   float64 // largest logit difference allowed at the first position
		minAgree   float64 // share of greedy tokens equal to the reference
		firstEqual int     // leading greedy tokens that must be identical
	}{
		{gguf.F16, 0.02, 0.9, 10},
		{gguf.BF16, 0.06, 0.9, 10},
		{gguf.Q8_0, 0.15, 0.6, 4},
		// A model of a million parameters feels 4- and 5-bit weights:
		// once one greedy token differs, the rest of the text does too
		// (measured: Q5_1 58, Q5_0 16, Q4_1 28, Q4_0 40 of 139 equal with
		// float32 activations; Q5_1 59, Q5_0 16, Q4_1 20, Q4_0 44 with the
		// 8-bit activations llama.cpp also uses).
		{gguf.Q5_1, 0.8, 0.3, 1},
		{gguf.Q5_0, 1.2, 0.08, 1},
		{gguf.Q4_1, 1.3, 0.12, 1},
		{gguf.Q4_0, 2, 0.2, 0},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			data := tolstoyGGUF(t, tc.typ)
			m, err := engine.LoadGGUF(data)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Quantized(); got != tc.typ.Quantised() {
				t.Fatalf("Quantized() = %v", got)
			}
			if tc.typ == gguf.Q8_0 && len(data) > 1_300_000 {
				t.Errorf("Q8_0 file is %d bytes; F32 is about 3.9 MB", len(data))
			}
			// Logits after the BOS token.
			rs, _ := ref.NewSession(engine.SessionOptions{Threads: 1})
			qs, _ := m.NewSession(engine.SessionOptions{Threads: 2})
			defer rs.Close()
			defer qs.Close()
			a, _ := rs.Forward(1, 0)
			a = append([]float32(nil), a...)
			b, _ := qs.Forward(1, 0)
			var worst float64
			for i := range a {
				worst = max(worst, math.Abs(float64(a[i]-b[i])))
			}
			if worst > tc.maxLogit {
				t.Errorf("largest logit difference %v, allowed %v", worst, tc.maxLogit)
			}
			agree, total := 0, 0
			for _, r := range reference {
				want := ids(r.generated)
				res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: r.prompt, MaxTokens: len(want)}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(res.Tokens[:tc.firstEqual], want[:tc.firstEqual]) {
					t.Errorf("%q: first tokens %v, reference %v", r.prompt, res.Tokens[:tc.firstEqual], want[:tc.firstEqual])
				}
				for i := range min(len(res.Tokens), len(want)) {
					total++
					if res.Tokens[i] == want[i] {
						agree++
					}
				}
			}
			t.Logf("%s: logits within %.4f; %d of %d greedy tokens equal to the F32 reference", tc.typ, worst, agree, total)
			if float64(agree) < tc.minAgree*float64(total) {
				t.Errorf("only %d of %d tokens agree", agree, total)
			}
		})
	}
}

func TestTruncatedCheckpoint(t *testing.T) {
	full := models.TolstoyModel
	cuts := []int{0, 1, 3, 4, 27, 28, 29, 100, len(full) / 3, len(full) / 2, len(full) - 4, len(full) - 1}
	for n := 0; n < len(full); n += 65537 {
		cuts = append(cuts, n)
	}
	for _, n := range cuts {
		_, err := loadTolstoyV0(full[:n])
		if !errors.Is(err, engine.ErrTruncated) {
			t.Fatalf("cut at %d: %v, want ErrTruncated", n, err)
		}
	}
	_, err := loadTolstoyV0(append(bytes.Clone(full), 0, 0, 0, 0))
	if !errors.Is(err, engine.ErrSizeMismatch) {
		t.Fatalf("extra bytes: %v", err)
	}
	v1 := newTiny(true, 3).v1()
	for _, n := range []int{8, 100, 255, 256, 300, len(v1) - 1} {
		if _, err := engine.LoadLlama2C(v1[:n], tinyTokenizer()); !errors.Is(err, engine.ErrTruncated) {
			t.Fatalf("version 1 cut at %d: %v", n, err)
		}
	}
}

func TestTruncatedGGUF(t *testing.T) {
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0} {
		full := tolstoyGGUF(t, typ)
		f, err := gguf.Parse(full)
		if err != nil {
			t.Fatal(err)
		}
		var end uint64 // the padding after the last tensor is optional
		for _, ti := range f.Tensors {
			end = max(end, f.DataOffset+ti.Offset+ti.Size)
		}
		var cuts []int
		for n := 0; n < 600; n++ {
			cuts = append(cuts, n)
		}
		for n := 600; n < int(end); n += 997 {
			cuts = append(cuts, n)
		}
		cuts = append(cuts, int(f.DataOffset)-1, int(f.DataOffset), int(end)-1)
		for _, n := range cuts {
			_, err := engine.LoadGGUF(full[:n])
			if !errors.Is(err, engine.ErrTruncated) {
				t.Fatalf("%s cut at %d of %d: %v, want ErrTruncated", typ, n, len(full), err)
			}
		}
	}
}

// setInt32 overwrites header field i of a version 0 checkpoint.
func setInt32(b []byte, i int, v int32) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	return b
}

func TestCorruptCheckpointHeader(t *testing.T) {
	full := models.TolstoyModel
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"dim not divisible by heads", setInt32(full, 0, 130), engine.ErrInvalidHeader},
		{"odd head size", setInt32(full, 3, 128), engine.ErrInvalidHeader},
		{"kv heads not dividing heads", setInt32(full, 4, 3), engine.ErrInvalidHeader},
		{"more kv heads than heads", setInt32(full, 4, 8), engine.ErrInvalidHeader},
		{"one layer fewer", setInt32(full, 2, 3), engine.ErrSizeMismatch},
		{"one layer more", setInt32(full, 2, 5), engine.ErrTruncated},
		{"longer context", setInt32(full, 6, 512), engine.ErrTruncated},
		{"unshared classifier, missing", setInt32(full, 5, -1024), engine.ErrTruncated},
		{"smaller vocabulary", setInt32(full, 5, 1000), engine.ErrSizeMismatch},
		{"negative dim", setInt32(full, 0, -128), engine.ErrUnknownFormat},
		{"zero layers", setInt32(full, 2, 0), engine.ErrUnknownFormat},
		{"huge hidden dim", setInt32(full, 1, 1<<30), engine.ErrUnknownFormat},
		{"text file", []byte(strings.Repeat("War and Peace, by Leo Tolstoy. ", 10)), engine.ErrUnknownFormat},
		{"version 2 checkpoint", append(binary.LittleEndian.AppendUint32(nil, 0x616b3432), 2, 0, 0, 0), engine.ErrUnsupported},
	} {
		if _, err := loadTolstoyV0(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The vocabulary of tokenizer and model must agree.
	tiny := newTiny(true, 1).v0()
	if _, err := engine.LoadLlama2C(tiny, models.TolstoyTokenizer); !errors.Is(err, engine.ErrVocabMismatch) {
		t.Errorf("tokenizer of 1024 with a model of 262: %v", err)
	}
	tok := models.TolstoyTokenizer
	if _, err := loadTolstoyV0Tok(full, tok[:len(tok)-5]); !errors.Is(err, engine.ErrTruncated) || !errors.Is(err, engine.ErrTokenizer) {
		t.Errorf("truncated tokenizer: %v", err)
	}
}

func loadTolstoyV0Tok(model, tok []byte) (*engine.Model, error) {
	return engine.LoadLlama2C(model, tok)
}

// rewriteGGUF re-encodes a GGUF file with edit applied to its metadata
// and tensors.
func rewriteGGUF(t *testing.T, data []byte, edit func(kvs map[string]any, tensors map[string]*gguf.TensorInfo)) []byte {
	t.Helper()
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	kvs := map[string]any{}
	for _, kv := range f.KVs {
		kvs[kv.Key] = kv.Value
	}
	tensors := map[string]*gguf.TensorInfo{}
	for i := range f.Tensors {
		ti := f.Tensors[i]
		tensors[ti.Name] = &ti
	}
	edit(kvs, tensors)
	w := &gguf.Writer{}
	for _, kv := range f.KVs {
		if v, ok := kvs[kv.Key]; ok {
			w.Set(kv.Key, v)
		}
	}
	for k, v := range kvs {
		if _, ok := f.Get(k); !ok {
			w.Set(k, v)
		}
	}
	for _, orig := range f.Tensors {
		ti, ok := tensors[orig.Name]
		if !ok {
			continue
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, f.TensorData(orig)); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCorruptGGUF(t *testing.T) {
	base := tolstoyGGUF(t, gguf.F32)
	for _, tc := range []struct {
		name string
		edit func(kvs map[string]any, tensors map[string]*gguf.TensorInfo)
		want error
	}{
		{"another architecture", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["general.architecture"] = "phi3"
		}, engine.ErrUnsupported},
		{"gpt2 tokenizer without merges", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["tokenizer.ggml.model"] = "gpt2"
		}, engine.ErrTokenizer},
		{"unigram tokenizer", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["tokenizer.ggml.model"] = "t5"
		}, engine.ErrUnsupported},
		{"width disagrees with tensors", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["llama.embedding_length"] = uint32(256)
			kv["llama.rope.dimension_count"] = uint32(64)
		}, engine.ErrSizeMismatch},
		{"missing block count", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			delete(kv, "llama.block_count")
		}, engine.ErrInvalidHeader},
		{"more layers than tensors", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["llama.block_count"] = uint32(5)
		}, engine.ErrInvalidHeader},
		{"vocab_size disagrees with the tokenizer", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["llama.vocab_size"] = uint32(1000)
		}, engine.ErrVocabMismatch},
		{"tokenizer shorter than the embedding", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			a := kv["tokenizer.ggml.tokens"].(gguf.Array)
			kv["tokenizer.ggml.tokens"] = gguf.Array{Type: gguf.TypeString, Values: a.Values.([]string)[:1000]}
			delete(kv, "tokenizer.ggml.scores")
			delete(kv, "tokenizer.ggml.token_type")
			delete(kv, "llama.vocab_size")
		}, engine.ErrVocabMismatch},
		{"scores of the wrong length", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["tokenizer.ggml.scores"] = []float32{1, 2, 3}
		}, engine.ErrTokenizer},
		{"BOS outside the vocabulary", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["tokenizer.ggml.bos_token_id"] = uint32(5000)
		}, engine.ErrTokenizer},
		{"missing tensor", func(_ map[string]any, ts map[string]*gguf.TensorInfo) {
			delete(ts, "blk.2.ffn_up.weight")
		}, engine.ErrInvalidHeader},
		{"tensor of the wrong shape", func(_ map[string]any, ts map[string]*gguf.TensorInfo) {
			ts["blk.1.attn_q.weight"].Dims = []uint64{64, 256}
		}, engine.ErrSizeMismatch},
		{"unsupported tensor type", func(_ map[string]any, ts map[string]*gguf.TensorInfo) {
			ts["blk.0.attn_q.weight"].Type = gguf.I32 // same size as F32
		}, engine.ErrUnsupported},
		{"rotary on part of the head", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["llama.rope.dimension_count"] = uint32(16)
		}, engine.ErrUnsupported},
		{"mixture of experts", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["llama.expert_count"] = uint32(8)
		}, engine.ErrUnsupported},
		{"heads not dividing the width", func(kv map[string]any, _ map[string]*gguf.TensorInfo) {
			kv["llama.attention.head_count"] = uint32(3)
		}, engine.ErrInvalidHeader},
	} {
		data := rewriteGGUF(t, base, tc.edit)
		if _, err := engine.LoadGGUF(data); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Flipping bytes of the fixed header.
	for _, tc := range []struct {
		off  int
		val  uint32
		want error
	}{
		{4, 1, engine.ErrUnsupported},      // version 1
		{4, 99, engine.ErrUnsupported},     // version 99
		{8, 0xffffff, engine.ErrTruncated}, // tensor count
		{16, 0xffffff, engine.ErrTruncated},
	} {
		b := bytes.Clone(base)
		binary.LittleEndian.PutUint32(b[tc.off:], tc.val)
		if _, err := engine.LoadGGUF(b); !errors.Is(err, tc.want) {
			t.Errorf("header offset %d = %d: %v, want %v", tc.off, tc.val, err, tc.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := engine.Open(filepath.Join(dir, "missing.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := engine.Open(write("empty.bin", nil)); !errors.Is(err, engine.ErrTruncated) {
		t.Errorf("empty file: %v", err)
	}
	if _, err := engine.Open(write("notes.txt", []byte(strings.Repeat("hello world\n", 20)))); !errors.Is(err, engine.ErrUnknownFormat) {
		t.Errorf("text file: %v", err)
	}
	// A checkpoint without tokenizer.bin beside it.
	if _, err := engine.Open(write("model.bin", models.TolstoyModel)); err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("checkpoint without tokenizer: %v", err)
	}
	write("tokenizer.bin", models.TolstoyTokenizer)
	m, err := engine.Open(filepath.Join(dir, "model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkReference(t, m, 2)
	if _, err := engine.OpenLlama2C(filepath.Join(dir, "model.bin"), filepath.Join(dir, "nope.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenLlama2C with a missing tokenizer: %v", err)
	}
}

func TestWriteGGUFRejects(t *testing.T) {
	m := defaultModel(t)
	if err := m.WriteGGUF(&bytes.Buffer{}, gguf.Q8_K); !errors.Is(err, engine.ErrUnsupported) {
		t.Errorf("Q8_K: %v", err)
	}
	tiny, err := engine.LoadLlama2C(newTiny(true, 1).v0(), tinyTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	if err := tiny.WriteGGUF(&bytes.Buffer{}, gguf.Q8_0); !errors.Is(err, engine.ErrUnsupported) {
		t.Errorf("Q8_0 of a 16-wide model: %v", err)
	}
	// F32 round trip of a model with GQA and a separate classifier.
	w := newTiny(false, 5)
	src, err := engine.LoadLlama2C(w.v0(), tinyTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := src.WriteGGUF(&b, gguf.F32); err != nil {
		t.Fatal(err)
	}
	m2, err := engine.LoadGGUF(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if m2.Config().SharedClassifier || m2.Config().KVHeads != 2 {
		t.Fatalf("config %+v", m2.Config())
	}
	want := w.forward([]int{1, 260, 7})
	s, _ := m2.NewSession(engine.SessionOptions{Threads: 1})
	defer s.Close()
	for pos, tk := range []int{1, 260, 7} {
		got, _ := s.Forward(tk, pos)
		for i := range got {
			if got[i] != want[pos][i] {
				t.Fatalf("pos %d logit %d: %v vs %v", pos, i, got[i], want[pos][i])
			}
		}
	}
}
