package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/engine/tokenizer"
)

// llama3Vocab is the reduced Llama 3 vocabulary of the tokenizer
// package's tests, with the ids the reference encoder gives for its cases.
type llama3Vocab struct {
	Pre    string   `json:"pre"`
	BOS    int      `json:"bos"`
	EOS    int      `json:"eos"`
	Tokens []string `json:"tokens"`
	Kinds  []int32  `json:"kinds"`
	Merges []string `json:"merges"`
	Cases  []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	} `json:"cases"`
}

func loadLlama3Vocab(t *testing.T) *llama3Vocab {
	t.Helper()
	b, err := os.ReadFile("tokenizer/testdata/llama3.json")
	if err != nil {
		t.Fatal(err)
	}
	var v llama3Vocab
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// llama3GGUF is a random F32 llama model (grouped-query attention, separate
// classifier) over the reduced Llama 3 vocabulary, as a GGUF file with a
// "gpt2" tokenizer, and its weights.
func llama3GGUF(t *testing.T, v *llama3Vocab, edit func(kvs map[string]any)) ([]byte, *tinyWeights) {
	t.Helper()
	n := len(v.Tokens)
	w := newRandomModel(&tinyWeights{dim: 16, hidden: 40, layers: 2, heads: 4, kvHeads: 2, vocab: n, seqLen: 32}, 11)
	// A placeholder SentencePiece vocabulary of the same size gets the
	// weights into a Model; the GGUF's tokenizer keys are then replaced.
	pieces := make([]string, n)
	kinds := make([]tokenizer.Kind, n)
	for i := range pieces {
		pieces[i], kinds[i] = fmt.Sprintf("p%d", i), tokenizer.Normal
	}
	kinds[0], kinds[1], kinds[2] = tokenizer.Unknown, tokenizer.Control, tokenizer.Control
	ph, err := tokenizer.New(pieces, make([]float32, n), kinds, tokenizer.Options{BOS: 1, EOS: 2})
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.LoadLlama2C(w.v0(), ph.MarshalLlama2C())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.WriteGGUF(&b, gguf.F32); err != nil {
		t.Fatal(err)
	}
	return rewriteGGUF(t, b.Bytes(), func(kvs map[string]any, _ map[string]*gguf.TensorInfo) {
		for _, k := range []string{"tokenizer.ggml.scores", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_space_prefix", "tokenizer.ggml.add_bos_token"} {
			delete(kvs, k)
		}
		kvs["tokenizer.ggml.model"] = "gpt2"
		kvs["tokenizer.ggml.pre"] = v.Pre
		kvs["tokenizer.ggml.tokens"] = v.Tokens
		kvs["tokenizer.ggml.token_type"] = v.Kinds
		kvs["tokenizer.ggml.merges"] = v.Merges
		kvs["tokenizer.ggml.bos_token_id"] = uint32(v.BOS)
		kvs["tokenizer.ggml.eos_token_id"] = uint32(v.EOS)
		if edit != nil {
			edit(kvs)
		}
	}), w
}

// TestGGUFByteLevelBPE loads a llama model with a Llama 3 ("gpt2",
// llama-bpe) tokenizer: prompts tokenise as the reference does, BOS is
// added (llama.cpp's default for llama-bpe), the forward pass matches
// run.c's transcription bit for bit, generation decodes, and writing the
// model back keeps the tokenizer.
func TestGGUFByteLevelBPE(t *testing.T) {
	v := loadLlama3Vocab(t)
	data, w := llama3GGUF(t, v, nil)
	m, err := engine.LoadGGUF(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Cases {
		if got := m.Tokenizer().Encode(c.Text, false); !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q) = %v, want %v", c.Text, got, c.IDs)
		}
	}
	res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "Hello, world!", MaxTokens: 6, Temperature: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]int{v.BOS}, m.Tokenizer().Encode("Hello, world!", false)...)
	if !slices.Equal(res.PromptTokens, want) {
		t.Errorf("prompt tokens %v, want %v (BOS + the text's)", res.PromptTokens, want)
	}
	if got := m.Tokenizer().Decode(res.Tokens); got != res.Text {
		t.Errorf("Text %q, decoded tokens %q", res.Text, got)
	}
	ref := w.forward(want)
	s, _ := m.NewSession(engine.SessionOptions{Threads: 1})
	defer s.Close()
	for pos, tk := range want {
		got, _ := s.Forward(tk, pos)
		if !slices.Equal(got, ref[pos]) {
			t.Fatalf("position %d: logits differ from run.c's transcription", pos)
		}
	}

	var b bytes.Buffer
	if err := m.WriteGGUF(&b, gguf.Q8_0); !errors.Is(err, engine.ErrUnsupported) {
		t.Errorf("Q8_0 of a 16-wide model: %v", err)
	}
	if err := m.WriteGGUF(&b, gguf.F16); err != nil {
		t.Fatal(err)
	}
	m2, err := engine.LoadGGUF(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if pre, merges, ok := m2.Tokenizer().BPE(); !ok || pre != v.Pre || !slices.Equal(merges, v.Merges) {
		t.Errorf("rewritten tokenizer: BPE %v, pre %q, %d merges", ok, pre, len(merges))
	}
	for _, c := range v.Cases[:10] {
		if got := m2.Tokenizer().Encode(c.Text, false); !slices.Equal(got, c.IDs) {
			t.Errorf("rewritten: Encode(%q) = %v, want %v", c.Text, got, c.IDs)
		}
	}
}

func TestGGUFByteLevelBPEErrors(t *testing.T) {
	v := loadLlama3Vocab(t)
	for _, c := range []struct {
		name string
		edit func(map[string]any)
		want error
	}{
		{"unknown pre-tokenizer", func(k map[string]any) { k["tokenizer.ggml.pre"] = "deepseek-llm" }, engine.ErrUnsupported},
		{"no merges", func(k map[string]any) { delete(k, "tokenizer.ggml.merges") }, engine.ErrTokenizer},
		{"no EOS", func(k map[string]any) { delete(k, "tokenizer.ggml.eos_token_id") }, engine.ErrTokenizer},
		{"BOS outside", func(k map[string]any) { k["tokenizer.ggml.bos_token_id"] = uint32(len(v.Tokens)) }, engine.ErrTokenizer},
		{"malformed merge", func(k map[string]any) { k["tokenizer.ggml.merges"] = []string{"nospace"} }, engine.ErrTokenizer},
	} {
		data, _ := llama3GGUF(t, v, c.edit)
		if _, err := engine.LoadGGUF(data); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestEndOfTurnStops: a token named by tokenizer.ggml.eot_token_id ends
// generation as EOS does (Llama 3 chat models end replies with <|eot_id|>,
// not EOS), survives WriteGGUF, and must be inside the vocabulary.
func TestEndOfTurnStops(t *testing.T) {
	v := loadLlama3Vocab(t)
	data, _ := llama3GGUF(t, v, nil)
	m, err := engine.LoadGGUF(data)
	if err != nil {
		t.Fatal(err)
	}
	req := engine.GenerateRequest{Prompt: "Hello", MaxTokens: 4, Temperature: 0}
	free, err := m.Generate(context.Background(), req, nil)
	if err != nil || len(free.Tokens) != 4 || free.Stop != engine.StopMaxTokens {
		t.Fatalf("without an end-of-turn token: %v, %v, %s", err, free.Tokens, free.Stop)
	}
	eot := free.Tokens[2]
	data2, _ := llama3GGUF(t, v, func(k map[string]any) { k["tokenizer.ggml.eot_token_id"] = uint32(eot) })
	m2, err := engine.LoadGGUF(data2)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m2.WriteGGUF(&b, gguf.F32); err != nil {
		t.Fatal(err)
	}
	m3, err := engine.LoadGGUF(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, mm := range []*engine.Model{m2, m3} {
		res, err := mm.Generate(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Stop != engine.StopEOS || !slices.Equal(res.Tokens, free.Tokens[:2]) {
			t.Errorf("with end-of-turn %d: tokens %v, stop %s; want %v, eos", eot, res.Tokens, res.Stop, free.Tokens[:2])
		}
	}
	bad, _ := llama3GGUF(t, v, func(k map[string]any) { k["tokenizer.ggml.eot_token_id"] = uint32(len(v.Tokens)) })
	if _, err := engine.LoadGGUF(bad); !errors.Is(err, engine.ErrTokenizer) {
		t.Errorf("end-of-turn outside the vocabulary: %v", err)
	}
}
