package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/engine/tokenizer"
)

// GGUF layout of a LLaMA model, as read and written here.
//
// Metadata: general.architecture = "llama"; llama.embedding_length,
// llama.feed_forward_length, llama.block_count, llama.attention.head_count,
// llama.attention.head_count_kv (default: head_count), llama.context_length,
// llama.attention.layer_norm_rms_epsilon (default 1e-5),
// llama.rope.freq_base (default 10000), llama.rope.dimension_count (must be
// the head size when present); tokenizer.ggml.model = "llama" (SentencePiece
// BPE) with tokenizer.ggml.tokens, .scores, .token_type, .bos_token_id,
// .eos_token_id, .unknown_token_id, .add_bos_token, .add_space_prefix.
// Token pieces mark spaces with U+2581 "▁" as SentencePiece does; the
// loader turns them into spaces and the writer back.
//
// Tensors (GGML dims are innermost first, so a row-major matrix of r rows
// and c columns has dims {c, r}): token_embd.weight {dim, vocab},
// blk.N.attn_norm.weight {dim}, blk.N.attn_q.weight {dim, dim},
// blk.N.attn_k.weight and attn_v {dim, kv_dim}, blk.N.attn_output.weight
// {dim, dim}, blk.N.ffn_norm.weight {dim}, blk.N.ffn_gate.weight (w1) and
// ffn_up (w3) {dim, hidden}, blk.N.ffn_down.weight (w2) {hidden, dim},
// output_norm.weight {dim}, and output.weight {dim, vocab} unless the
// classifier is the embedding (then it is omitted, as llama.cpp expects).
//
// Rotary layout: the Q and K rows are stored in the interleaved ("normal")
// order that Meta's LLaMA code and llama2.c use, where each head rotates
// consecutive pairs (2i, 2i+1). This is also llama.cpp's layout for the
// "llama" architecture: its convert_hf_to_gguf.py undoes Hugging Face's
// half-split permutation of q_proj/k_proj when writing a GGUF ("reverse HF
// permute back to original pth layout"), and llama.cpp runs llama models
// with LLAMA_ROPE_TYPE_NORM, which rotates consecutive pairs. So a GGUF made
// by llama.cpp from Hugging Face weights, and the files written here, are
// both read without any permutation. Architectures that use the half-split
// (NEOX) rotation, such as qwen2 or phi3, are rejected as unsupported.

// ggufError maps package gguf's errors onto the engine's.
func ggufError(err error) error {
	switch {
	case errors.Is(err, gguf.ErrTruncated):
		return fmt.Errorf("%w: %w", ErrTruncated, err)
	case errors.Is(err, gguf.ErrVersion), errors.Is(err, gguf.ErrTensorType):
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	case errors.Is(err, gguf.ErrNotGGUF):
		return fmt.Errorf("%w: %w", ErrUnknownFormat, err)
	}
	return fmt.Errorf("%w: %w", ErrInvalidHeader, err)
}

// spaceMarker is SentencePiece's visible space.
const spaceMarker = "\u2581"

// LoadGGUF builds a model from the bytes of a GGUF file. Float32 tensors
// are used in place when aligned, so data must not change.
func LoadGGUF(data []byte) (*Model, error) {
	f, err := gguf.Parse(data)
	if err != nil {
		return nil, ggufError(err)
	}
	arch, _ := f.String("general.architecture")
	if !slices.Contains(architectures, arch) {
		return nil, fmt.Errorf("%w: architecture %q (implemented: %s)", ErrUnsupported, arch, strings.Join(architectures, ", "))
	}
	if n, ok := f.Uint(arch + ".expert_count"); ok && n > 0 {
		return nil, fmt.Errorf("%w: mixture of %d experts", ErrUnsupported, n)
	}
	c, err := ggufConfig(f, arch)
	if err != nil {
		return nil, err
	}
	tok, addBOS, err := ggufTokenizer(f)
	if err != nil {
		return nil, err
	}
	c.VocabSize = tok.VocabSize()
	if n, ok := f.Uint(arch + ".vocab_size"); ok && n != uint64(c.VocabSize) {
		return nil, fmt.Errorf("%w: %s.vocab_size %d, tokenizer %d", ErrVocabMismatch, arch, n, c.VocabSize)
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return nil, fmt.Errorf("%w: no token_embd.weight tensor", ErrInvalidHeader)
	}
	if len(emb.Dims) == 2 && emb.Dims[1] != uint64(c.VocabSize) {
		return nil, fmt.Errorf("%w: token_embd.weight has %d rows, tokenizer %d tokens", ErrVocabMismatch, emb.Dims[1], c.VocabSize)
	}
	_, hasOutput := f.Tensor("output.weight")
	c.SharedClassifier = !hasOutput
	if err := c.validate(); err != nil {
		return nil, err
	}

	m := &Model{format: FormatGGUF, cfg: c, tok: tok, addBOS: addBOS, size: int64(len(data))}
	for _, key := range []string{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"} {
		if v, ok := f.Uint(key); ok {
			if v >= uint64(c.VocabSize) {
				return nil, fmt.Errorf("%w: %s %d outside %d tokens", ErrTokenizer, key, v, c.VocabSize)
			}
			m.endTurn = append(m.endTurn, int(v))
		}
	}
	if t, ok := f.String("tokenizer.chat_template"); ok {
		m.chatTemplate = t // checked when a chat is rendered, so a model with an unknown one still completes prompts
	}
	m.dtype = matrixTypes(f)
	dim, hid, kvd, vocab := c.Dim, c.HiddenDim, c.KVDim(), c.VocabSize
	if m.w.tokEmb, err = ggufMatrix(f, "token_embd.weight", vocab, dim); err != nil {
		return nil, err
	}
	m.w.cls = m.w.tokEmb
	if hasOutput {
		if m.w.cls, err = ggufMatrix(f, "output.weight", vocab, dim); err != nil {
			return nil, err
		}
	}
	if m.w.finalNorm, err = ggufVector(f, "output_norm.weight", dim); err != nil {
		return nil, err
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		if m.w.ropeFactors, err = ggufVector(f, "rope_freqs.weight", c.HeadSize()/2); err != nil {
			return nil, err
		}
		for i, v := range m.w.ropeFactors {
			if !(v > 0 && v < 1e6) {
				return nil, fmt.Errorf("%w: rope_freqs.weight[%d] = %v", ErrInvalidHeader, i, v)
			}
		}
	}
	for i := range c.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		var lw layerWeights
		for _, v := range []struct {
			name string
			dst  *[]float32
		}{{"attn_norm", &lw.attnNorm}, {"ffn_norm", &lw.ffnNorm}} {
			if *v.dst, err = ggufVector(f, p+v.name+".weight", dim); err != nil {
				return nil, err
			}
		}
		for _, mt := range []struct {
			name       string
			dst        *matrix
			rows, cols int
		}{
			{"attn_q", &lw.wq, dim, dim}, {"attn_k", &lw.wk, kvd, dim}, {"attn_v", &lw.wv, kvd, dim},
			{"attn_output", &lw.wo, dim, dim}, {"ffn_gate", &lw.w1, hid, dim},
			{"ffn_down", &lw.w2, dim, hid}, {"ffn_up", &lw.w3, hid, dim},
		} {
			if *mt.dst, err = ggufMatrix(f, p+mt.name+".weight", mt.rows, mt.cols); err != nil {
				return nil, err
			}
		}
		for _, b := range []struct {
			name string
			dst  *[]float32
			n    int
		}{{"attn_q", &lw.bq, dim}, {"attn_k", &lw.bk, kvd}, {"attn_v", &lw.bv, kvd}, {"attn_output", &lw.bo, dim}} {
			if _, ok := f.Tensor(p + b.name + ".bias"); !ok {
				continue
			}
			if *b.dst, err = ggufVector(f, p+b.name+".bias", b.n); err != nil {
				return nil, err
			}
		}
		for _, name := range []string{"ffn_gate", "ffn_up", "ffn_down"} {
			if _, ok := f.Tensor(p + name + ".bias"); ok {
				return nil, fmt.Errorf("%w: %s%s.bias (feed-forward biases are not implemented)", ErrUnsupported, p, name)
			}
		}
		m.w.layers = append(m.w.layers, lw)
	}
	return m, nil
}

// matrixTypes names the storage of a file's matrices: the type of
// blk.0.attn_q.weight, followed by the other types its 2-D tensors use
// ("Q4_K+Q6_K" for a Q4_K_M file), so a mixed file is not reported as
// uniform.
func matrixTypes(f *gguf.File) string {
	var names []string
	if q, ok := f.Tensor("blk.0.attn_q.weight"); ok {
		names = append(names, q.Type.String())
	}
	for _, t := range f.Tensors {
		if len(t.Dims) == 2 && !slices.Contains(names, t.Type.String()) {
			names = append(names, t.Type.String())
		}
	}
	return strings.Join(names, "+")
}

// architectures are the general.architecture values implemented: llama
// (Llama 1-3, Mistral, TinyLlama; interleaved RoPE) and qwen2 (QKV biases,
// NEOX RoPE). Others are refused by name.
var architectures = []string{"llama", "qwen2"}

func ggufConfig(f *gguf.File, arch string) (Config, error) {
	c := Config{Arch: arch, RopeNeox: arch == "qwen2"}
	key := func(k string) string { return arch + "." + k }
	get := func(key string, dst *int, required bool, def int) error {
		v, ok := f.Uint(key)
		if !ok {
			if _, present := f.Get(key); present || required {
				return fmt.Errorf("%w: %s missing or not a non-negative integer", ErrInvalidHeader, key)
			}
			*dst = def
			return nil
		}
		if v > 1<<31 {
			return fmt.Errorf("%w: %s = %d", ErrInvalidHeader, key, v)
		}
		*dst = int(v)
		return nil
	}
	for _, k := range []struct {
		key string
		dst *int
	}{
		{key("embedding_length"), &c.Dim}, {key("feed_forward_length"), &c.HiddenDim},
		{key("block_count"), &c.Layers}, {key("attention.head_count"), &c.Heads},
		{key("context_length"), &c.SeqLen},
	} {
		if err := get(k.key, k.dst, true, 0); err != nil {
			return c, err
		}
	}
	if err := get(key("attention.head_count_kv"), &c.KVHeads, false, c.Heads); err != nil {
		return c, err
	}
	c.NormEps, c.RopeTheta = llama2cNormEps, llama2cRopeTheta
	if v, ok := f.Float(key("attention.layer_norm_rms_epsilon")); ok {
		c.NormEps = float32(v)
	}
	if v, ok := f.Float(key("rope.freq_base")); ok {
		c.RopeTheta = float32(v)
	}
	if c.Heads > 0 && c.Dim%c.Heads == 0 {
		if n, ok := f.Uint(key("rope.dimension_count")); ok && n != uint64(c.Dim/c.Heads) {
			return c, fmt.Errorf("%w: rotary embedding on %d of %d head dimensions", ErrUnsupported, n, c.Dim/c.Heads)
		}
	}
	// Sliding-window attention over w positions is full attention while
	// the sequence is no longer than w, so the context is capped there
	// rather than the model refused.
	if n, ok := f.Uint(key("attention.sliding_window")); ok && n > 0 && n < uint64(c.SeqLen) {
		c.SeqLen = int(n)
	}
	// RoPE scaling: "linear" divides positions by the factor (GGML's
	// freq_scale = 1/factor); Llama 3.1's scaling comes as the
	// rope_freqs.weight tensor instead. YaRN and LongRoPE are refused.
	switch t, _ := f.String(key("rope.scaling.type")); t {
	case "", "none":
		if _, ok := f.Get(key("rope.scaling.type")); ok && t == "" {
			return c, fmt.Errorf("%w: %s is not a string", ErrInvalidHeader, key("rope.scaling.type"))
		}
	case "linear":
		factor, ok := f.Float(key("rope.scaling.factor"))
		if !ok || !(factor >= 1e-3 && factor <= 1e3) {
			return c, fmt.Errorf("%w: linear rope scaling with factor %v", ErrInvalidHeader, factor)
		}
		if factor != 1 {
			c.RopeFreqScale = float32(1 / factor)
		}
	default:
		return c, fmt.Errorf("%w: rope scaling %q (linear is implemented)", ErrUnsupported, t)
	}
	c.VocabSize = 1 // set from the tokenizer by the caller
	c.SharedClassifier = true
	return c, c.validate()
}

func ggufTokenizer(f *gguf.File) (*tokenizer.Tokenizer, bool, error) {
	model, _ := f.String("tokenizer.ggml.model")
	if model == "gpt2" {
		return ggufBPE(f)
	}
	if model != "llama" {
		return nil, false, fmt.Errorf("%w: tokenizer model %q (SentencePiece \"llama\" and byte-level BPE \"gpt2\" are implemented)", ErrUnsupported, model)
	}
	arr, ok := f.Array("tokenizer.ggml.tokens")
	toks, isStr := arr.Values.([]string)
	if !ok || !isStr || len(toks) == 0 {
		return nil, false, fmt.Errorf("%w: tokenizer.ggml.tokens missing or not strings", ErrTokenizer)
	}
	n := len(toks)
	pieces := make([]string, n)
	for i, t := range toks {
		pieces[i] = strings.ReplaceAll(t, spaceMarker, " ")
	}
	scores := make([]float32, n)
	if a, ok := f.Array("tokenizer.ggml.scores"); ok {
		s, isF := a.Values.([]float32)
		if !isF || len(s) != n {
			return nil, false, fmt.Errorf("%w: %d scores for %d tokens", ErrTokenizer, a.Len(), n)
		}
		copy(scores, s)
	}
	kinds := make([]tokenizer.Kind, n)
	for i := range kinds {
		kinds[i] = tokenizer.Normal
	}
	if a, ok := f.Array("tokenizer.ggml.token_type"); ok {
		t, isI := a.Values.([]int32)
		if !isI || len(t) != n {
			return nil, false, fmt.Errorf("%w: %d token types for %d tokens", ErrTokenizer, a.Len(), n)
		}
		for i, k := range t {
			if k != 0 { // 0 is llama.cpp's "undefined": treat as normal
				kinds[i] = tokenizer.Kind(k)
			}
		}
	}
	id := func(key string, def int) (int, error) {
		v, ok := f.Uint(key)
		if !ok {
			return def, nil
		}
		if v >= uint64(n) {
			return 0, fmt.Errorf("%w: %s %d outside %d tokens", ErrTokenizer, key, v, n)
		}
		return int(v), nil
	}
	var opts tokenizer.Options
	var err error
	if opts.BOS, err = id("tokenizer.ggml.bos_token_id", 1); err != nil {
		return nil, false, err
	}
	if opts.EOS, err = id("tokenizer.ggml.eos_token_id", 2); err != nil {
		return nil, false, err
	}
	if opts.UNK, err = id("tokenizer.ggml.unknown_token_id", 0); err != nil {
		return nil, false, err
	}
	opts.AddSpacePrefix = true
	if v, ok := f.Bool("tokenizer.ggml.add_space_prefix"); ok {
		opts.AddSpacePrefix = v
	}
	addBOS := true
	if v, ok := f.Bool("tokenizer.ggml.add_bos_token"); ok {
		addBOS = v
	}
	tok, err := tokenizer.New(pieces, scores, kinds, opts)
	if err != nil {
		return nil, false, tokenizerError(err)
	}
	return tok, addBOS, nil
}

// ggufBPE reads a byte-level BPE vocabulary (tokenizer.ggml.model =
// "gpt2"): tokens in GPT-2's bytes_to_unicode form, token_type, merges
// ("left right", most preferred first), the pre-tokenizer name
// tokenizer.ggml.pre, and BOS and EOS ids, which must be present (there is
// no conventional default as SentencePiece's 1 and 2). Whether to add BOS
// defaults to llama.cpp's choice for the pre-tokenizer (yes for the Llama 3
// family, no otherwise) unless tokenizer.ggml.add_bos_token says.
func ggufBPE(f *gguf.File) (*tokenizer.Tokenizer, bool, error) {
	arr, ok := f.Array("tokenizer.ggml.tokens")
	toks, isStr := arr.Values.([]string)
	if !ok || !isStr || len(toks) == 0 {
		return nil, false, fmt.Errorf("%w: tokenizer.ggml.tokens missing or not strings", ErrTokenizer)
	}
	n := len(toks)
	kinds := make([]tokenizer.Kind, n)
	for i := range kinds {
		kinds[i] = tokenizer.Normal
	}
	if a, ok := f.Array("tokenizer.ggml.token_type"); ok {
		t, isI := a.Values.([]int32)
		if !isI || len(t) != n {
			return nil, false, fmt.Errorf("%w: %d token types for %d tokens", ErrTokenizer, a.Len(), n)
		}
		for i, k := range t {
			if k != 0 {
				kinds[i] = tokenizer.Kind(k)
			}
		}
	}
	ma, ok := f.Array("tokenizer.ggml.merges")
	merges, isStr := ma.Values.([]string)
	if !ok || !isStr {
		return nil, false, fmt.Errorf("%w: tokenizer.ggml.merges missing or not strings", ErrTokenizer)
	}
	pre, _ := f.String("tokenizer.ggml.pre")
	opts := tokenizer.BPEOptions{Pre: pre}
	for _, k := range []struct {
		key string
		dst *int
	}{{"tokenizer.ggml.bos_token_id", &opts.BOS}, {"tokenizer.ggml.eos_token_id", &opts.EOS}} {
		v, ok := f.Uint(k.key)
		if !ok || v >= uint64(n) {
			return nil, false, fmt.Errorf("%w: %s missing or outside %d tokens", ErrTokenizer, k.key, n)
		}
		*k.dst = int(v)
	}
	if v, ok := f.Uint("tokenizer.ggml.unknown_token_id"); ok && v < uint64(n) {
		opts.UNK = int(v)
	}
	tok, err := tokenizer.NewBPE(toks, kinds, merges, opts)
	if err != nil {
		return nil, false, tokenizerError(err)
	}
	addBOS := strings.HasPrefix(pre, "llama") || pre == "falcon3" || pre == "pixtral"
	if v, ok := f.Bool("tokenizer.ggml.add_bos_token"); ok {
		addBOS = v
	}
	return tok, addBOS, nil
}

// ggufVector loads a 1-D F32 (or F16) tensor of n values.
func ggufVector(f *gguf.File, name string, n int) ([]float32, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%w: no %s tensor", ErrInvalidHeader, name)
	}
	if len(t.Dims) != 1 || t.Dims[0] != uint64(n) {
		return nil, fmt.Errorf("%w: %s has dims %v, want [%d]", ErrSizeMismatch, name, t.Dims, n)
	}
	switch t.Type {
	case gguf.F32:
		return float32s(f.TensorData(t)), nil
	case gguf.F16, gguf.BF16:
		v := make([]float32, n)
		if err := gguf.Dequantize(t.Type, v, f.TensorData(t)); err != nil {
			return nil, ggufError(err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("%w: %s is %s (norm weights must be F32, F16 or BF16)", ErrUnsupported, name, t.Type)
}

// ggufMatrix loads a rows×cols matrix stored as F32, F16 or BF16 (widened
// to float32), Q8_0 (unpacked) or another quantised type (used in place).
func ggufMatrix(f *gguf.File, name string, rows, cols int) (matrix, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return matrix{}, fmt.Errorf("%w: no %s tensor", ErrInvalidHeader, name)
	}
	if len(t.Dims) != 2 || t.Dims[0] != uint64(cols) || t.Dims[1] != uint64(rows) {
		return matrix{}, fmt.Errorf("%w: %s has dims %v, want [%d %d]", ErrSizeMismatch, name, t.Dims, cols, rows)
	}
	m := matrix{rows: rows, cols: cols}
	b := f.TensorData(t)
	switch t.Type {
	case gguf.F32:
		m.f32 = float32s(b)
	case gguf.F16:
		m.f32 = float16s(b)
	case gguf.BF16:
		m.f32 = make([]float32, rows*cols)
		if err := gguf.Dequantize(t.Type, m.f32, b); err != nil {
			return matrix{}, ggufError(err)
		}
	case gguf.Q8_0:
		m.q8, m.q8d = unpackQ8(b)
	default:
		if !t.Type.Quantised() {
			return matrix{}, fmt.Errorf("%w: %s is %s (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K-Q6_K are implemented)", ErrUnsupported, name, t.Type)
		}
		// The parser checked that the row is whole blocks and the data
		// lies inside the file; the division is exact.
		m.raw, m.typ, m.rowBytes = b, t.Type, len(b)/rows
	}
	return m, nil
}

// llama.cpp's general.file_type (LLAMA_FTYPE_MOSTLY_*) values for the
// files written here; a uniform K-quant file is llama.cpp's "_S" variant.
var fileTypes = map[gguf.TensorType]uint32{
	gguf.F32: 0, gguf.F16: 1, gguf.Q4_0: 2, gguf.Q4_1: 3, gguf.Q8_0: 7, gguf.Q5_0: 8, gguf.Q5_1: 9,
	gguf.Q2_K: 10, gguf.Q3_K: 11, gguf.Q4_K: 14, gguf.Q5_K: 16, gguf.Q6_K: 18, gguf.BF16: 32,
}

// kFallback is the type llama.cpp's llama-quantize uses for a K-quant
// tensor whose rows are not a whole number of 256-value super-blocks
// (it uses IQ4_NL for Q2_K and Q3_K, which this engine does not have, so
// Q4_0 stands in).
var kFallback = map[gguf.TensorType]gguf.TensorType{
	gguf.Q2_K: gguf.Q4_0, gguf.Q3_K: gguf.Q4_0, gguf.Q4_K: gguf.Q5_0, gguf.Q5_K: gguf.Q5_1, gguf.Q6_K: gguf.Q8_0,
}

// Mixes are the mixed quantisations WriteGGUFMix writes, by llama.cpp's
// names.
var Mixes = []string{"Q4_K_M", "Q5_K_M"}

// WriteGGUF writes the model as a GGUF file whose matrices are stored as
// typ (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K-Q6_K; norms stay
// F32), in the layout described at the top of this file. The 32-value
// block types need every row length to be a multiple of 32; a K-quant
// matrix whose rows are not a multiple of 256 is stored as llama-quantize
// would (see kFallback).
func (m *Model) WriteGGUF(w io.Writer, typ gguf.TensorType) error {
	ft, ok := fileTypes[typ]
	if !ok {
		return fmt.Errorf("%w: cannot write %s tensors", ErrUnsupported, typ)
	}
	return m.writeGGUF(w, ft, func(string, int) gguf.TensorType { return typ })
}

// WriteGGUFMix writes the model with one of llama.cpp's mixed
// quantisations (see Mixes). Q4_K_M (Q5_K_M) stores the classifier as Q6_K,
// attn_v and ffn_down as Q6_K in the first and last eighth of the layers
// and every third layer between (llama.cpp's use_more_bits), and every
// other matrix as Q4_K (Q5_K). llama.cpp's further special cases (for
// models with 8+ experts, some architectures and its importance matrix)
// do not apply to the models written here.
func (m *Model) WriteGGUFMix(w io.Writer, mix string) error {
	var base gguf.TensorType
	var ft uint32
	switch mix {
	case "Q4_K_M":
		base, ft = gguf.Q4_K, 15
	case "Q5_K_M":
		base, ft = gguf.Q5_K, 17
	default:
		return fmt.Errorf("%w: quantisation mix %q (have %s)", ErrUnsupported, mix, strings.Join(Mixes, ", "))
	}
	n := m.cfg.Layers
	moreBits := func(i int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }
	return m.writeGGUF(w, ft, func(name string, layer int) gguf.TensorType {
		switch {
		case name == "output.weight":
			return gguf.Q6_K
		case (strings.HasSuffix(name, ".attn_v.weight") || strings.HasSuffix(name, ".ffn_down.weight")) && moreBits(layer):
			return gguf.Q6_K
		}
		return base
	})
}

// storageType is the type a matrix of cols columns is written as when typ
// is asked for.
func storageType(typ gguf.TensorType, cols int) (gguf.TensorType, error) {
	bs := typ.BlockSize()
	if cols%bs == 0 {
		return typ, nil
	}
	if fb, ok := kFallback[typ]; ok && cols%fb.BlockSize() == 0 {
		return fb, nil
	}
	return 0, fmt.Errorf("%w: %s needs rows that are a multiple of %d values (a matrix has %d)", ErrUnsupported, typ, bs, cols)
}

// writeGGUF writes the model with typeFor(tensor name, layer or -1)
// choosing each matrix's type.
func (m *Model) writeGGUF(w io.Writer, ft uint32, typeFor func(name string, layer int) gguf.TensorType) error {
	c := m.cfg
	gw := &gguf.Writer{}
	arch := c.Arch
	if arch == "" {
		arch = "llama"
	}
	key := func(k string) string { return arch + "." + k }
	gw.Set("general.architecture", arch)
	gw.Set("general.name", m.name)
	gw.Set("general.file_type", ft)
	gw.Set(key("context_length"), uint32(c.SeqLen))
	gw.Set(key("embedding_length"), uint32(c.Dim))
	gw.Set(key("block_count"), uint32(c.Layers))
	gw.Set(key("feed_forward_length"), uint32(c.HiddenDim))
	gw.Set(key("attention.head_count"), uint32(c.Heads))
	gw.Set(key("attention.head_count_kv"), uint32(c.KVHeads))
	gw.Set(key("attention.layer_norm_rms_epsilon"), c.NormEps)
	gw.Set(key("rope.freq_base"), c.RopeTheta)
	gw.Set(key("rope.dimension_count"), uint32(c.HeadSize()))
	gw.Set(key("vocab_size"), uint32(c.VocabSize))
	if c.RopeFreqScale != 0 && c.RopeFreqScale != 1 {
		gw.Set(key("rope.scaling.type"), "linear")
		gw.Set(key("rope.scaling.factor"), 1/c.RopeFreqScale)
	}

	if pre, merges, ok := m.tok.BPE(); ok {
		writeBPE(gw, m, pre, merges)
	} else {
		writeSentencePiece(gw, m)
	}
	if m.chatTemplate != "" {
		gw.Set("tokenizer.chat_template", m.chatTemplate)
	}

	vec := func(name string, v []float32) error {
		return gw.AddTensor(name, gguf.F32, []uint64{uint64(len(v))}, f32Bytes(v))
	}
	optVec := func(name string, v []float32) error {
		if v == nil {
			return nil
		}
		return vec(name, v)
	}
	layer := -1
	mat := func(name string, x *matrix) error {
		typ, err := storageType(typeFor(name, layer), x.cols)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b, err := encodeMatrix(x, typ)
		if err != nil {
			return err
		}
		return gw.AddTensor(name, typ, []uint64{uint64(x.cols), uint64(x.rows)}, b)
	}
	if err := mat("token_embd.weight", &m.w.tokEmb); err != nil {
		return err
	}
	for i, l := range m.w.layers {
		p := fmt.Sprintf("blk.%d.", i)
		layer = i
		for _, e := range []error{
			vec(p+"attn_norm.weight", l.attnNorm),
			mat(p+"attn_q.weight", &l.wq), mat(p+"attn_k.weight", &l.wk), mat(p+"attn_v.weight", &l.wv),
			mat(p+"attn_output.weight", &l.wo),
			vec(p+"ffn_norm.weight", l.ffnNorm),
			mat(p+"ffn_gate.weight", &l.w1), mat(p+"ffn_down.weight", &l.w2), mat(p+"ffn_up.weight", &l.w3),
			optVec(p+"attn_q.bias", l.bq), optVec(p+"attn_k.bias", l.bk), optVec(p+"attn_v.bias", l.bv),
			optVec(p+"attn_output.bias", l.bo),
		} {
			if e != nil {
				return e
			}
		}
	}
	if err := vec("output_norm.weight", m.w.finalNorm); err != nil {
		return err
	}
	if err := optVec("rope_freqs.weight", m.w.ropeFactors); err != nil {
		return err
	}
	layer = -1
	if !c.SharedClassifier {
		if err := mat("output.weight", &m.w.cls); err != nil {
			return err
		}
	}
	_, err := gw.WriteTo(w)
	return err
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// writeSentencePiece writes a "llama" tokenizer: pieces with ▁ for
// spaces, scores, kinds, special ids and flags.
func writeSentencePiece(gw *gguf.Writer, m *Model) {
	n := m.tok.VocabSize()
	pieces := make([]string, n)
	scores := make([]float32, n)
	kinds := make([]int32, n)
	for i := range n {
		p, s, k := m.tok.Token(i)
		pieces[i] = strings.ReplaceAll(p, " ", spaceMarker)
		scores[i], kinds[i] = s, int32(k)
	}
	opts := m.tok.Options()
	gw.Set("tokenizer.ggml.model", "llama")
	gw.Set("tokenizer.ggml.tokens", pieces)
	gw.Set("tokenizer.ggml.scores", scores)
	gw.Set("tokenizer.ggml.token_type", kinds)
	gw.Set("tokenizer.ggml.bos_token_id", uint32(opts.BOS))
	gw.Set("tokenizer.ggml.eos_token_id", uint32(opts.EOS))
	gw.Set("tokenizer.ggml.unknown_token_id", uint32(opts.UNK))
	gw.Set("tokenizer.ggml.add_bos_token", m.addBOS)
	gw.Set("tokenizer.ggml.add_space_prefix", opts.AddSpacePrefix)
}

// writeBPE writes a byte-level BPE ("gpt2") tokenizer: tokens as stored,
// kinds, merges, the pre-tokenizer name, special ids and the BOS flag.
func writeBPE(gw *gguf.Writer, m *Model, pre string, merges []string) {
	n := m.tok.VocabSize()
	pieces := make([]string, n)
	kinds := make([]int32, n)
	for i := range n {
		p, _, k := m.tok.Token(i)
		pieces[i], kinds[i] = p, int32(k)
	}
	opts := m.tok.Options()
	gw.Set("tokenizer.ggml.model", "gpt2")
	gw.Set("tokenizer.ggml.pre", pre)
	gw.Set("tokenizer.ggml.tokens", pieces)
	gw.Set("tokenizer.ggml.token_type", kinds)
	gw.Set("tokenizer.ggml.merges", merges)
	gw.Set("tokenizer.ggml.bos_token_id", uint32(opts.BOS))
	gw.Set("tokenizer.ggml.eos_token_id", uint32(opts.EOS))
	gw.Set("tokenizer.ggml.add_bos_token", m.addBOS)
	for i, key := range []string{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"} {
		if i < len(m.endTurn) {
			gw.Set(key, uint32(m.endTurn[i]))
		}
	}
}

// encodeMatrix encodes a matrix's values as typ.
func encodeMatrix(x *matrix, typ gguf.TensorType) ([]byte, error) {
	vals := x.f32
	if x.quantized() {
		vals = make([]float32, x.rows*x.cols)
		for r := range x.rows {
			x.row(vals[r*x.cols:(r+1)*x.cols], r)
		}
	}
	n, err := typ.RowSize(uint64(len(vals)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	b := make([]byte, n)
	if err := gguf.Quantize(typ, b, vals); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return b, nil
}
