package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/engine/tokenizer"
)

// llama2.c checkpoint formats (github.com/karpathy/llama2.c, export.py):
//
// Version 0 ("legacy"): seven int32 — dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size (negative when the classifier is not shared),
// seq_len — then float32 tensors: token embedding, attention norms, wq, wk,
// wv, wo, ffn norms, w1, w2, w3, final norm, two RoPE tables of
// seq_len×head_size/2 (ignored: the engine computes RoPE), and the
// classifier when not shared.
//
// Version 1: a 256-byte header — uint32 magic 0x616b3432 ("ak42"), int32
// version, the seven int32 above (vocab_size positive), a uint8 shared
// classifier flag, zero padding — then float32 tensors: attention norms,
// ffn norms, final norm, token embedding, wq, wk, wv, wo, w1, w2, w3, and
// the classifier when not shared. Version 2 (Q8_0 groups) is not supported.
const (
	llama2cMagic      = 0x616b3432
	llama2cV0Header   = 28
	llama2cV1Header   = 256
	llama2cNormEps    = 1e-5
	llama2cRopeTheta  = 10000
	llama2cMinVersion = 1
	llama2cMaxVersion = 1
)

// llama2cHeader is a parsed checkpoint header.
type llama2cHeader struct {
	cfg     Config
	version int
	offset  int // start of the tensors
}

// parseLlama2CHeader validates a checkpoint header. A file with no magic
// whose seven integers are not plausible sizes is reported as
// ErrUnknownFormat: version 0 has no magic to tell it apart from anything
// else.
func parseLlama2CHeader(b []byte) (llama2cHeader, error) {
	le := binary.LittleEndian
	var h llama2cHeader
	if len(b) >= 8 && le.Uint32(b) == llama2cMagic {
		v := int32(le.Uint32(b[4:]))
		if v < llama2cMinVersion || v > llama2cMaxVersion {
			return h, fmt.Errorf("%w: llama2.c checkpoint version %d (only 0 and 1 are read)", ErrUnsupported, v)
		}
		if len(b) < llama2cV1Header {
			return h, fmt.Errorf("%w: %d bytes, the version 1 header alone is %d", ErrTruncated, len(b), llama2cV1Header)
		}
		h.version, h.offset = int(v), llama2cV1Header
		ints := readInts(b[8:], 7)
		if ints[5] < 0 {
			return h, fmt.Errorf("%w: vocab_size %d", ErrInvalidHeader, ints[5])
		}
		switch b[36] {
		case 0, 1:
			h.cfg.SharedClassifier = b[36] == 1
		default:
			return h, fmt.Errorf("%w: shared classifier flag %d", ErrInvalidHeader, b[36])
		}
		h.cfg = headerConfig(ints, h.cfg.SharedClassifier)
		return h, h.cfg.validate()
	}
	if len(b) < llama2cV0Header {
		return h, fmt.Errorf("%w: %d bytes, shorter than any model header", ErrTruncated, len(b))
	}
	ints := readInts(b, 7)
	vocab := ints[5]
	if vocab < 0 {
		vocab = -vocab
	}
	lim := []int{maxDim, maxHidden, maxLayers, maxHeads, maxHeads, maxVocab, maxSeqLen}
	for i, v := range ints {
		if i == 5 {
			v = vocab
		}
		if v < 1 || v > lim[i] {
			return h, fmt.Errorf("%w: no GGUF magic, and header field %d (%d) is not a llama2.c size", ErrUnknownFormat, i, ints[i])
		}
	}
	h.offset = llama2cV0Header
	h.cfg = headerConfig(ints, ints[5] > 0)
	return h, h.cfg.validate()
}

func readInts(b []byte, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = int(int32(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return out
}

func headerConfig(ints []int, shared bool) Config {
	vocab := ints[5]
	if vocab < 0 {
		vocab = -vocab
	}
	return Config{
		Dim: ints[0], HiddenDim: ints[1], Layers: ints[2], Heads: ints[3], KVHeads: ints[4],
		VocabSize: vocab, SeqLen: ints[6],
		NormEps: llama2cNormEps, RopeTheta: llama2cRopeTheta, SharedClassifier: shared, Arch: "llama",
	}
}

// LoadLlama2C builds a model from the bytes of a llama2.c checkpoint and
// of its tokenizer.bin. The model keeps references into data (float32
// tensors are used in place when aligned), so data must not change.
func LoadLlama2C(data, tokData []byte) (*Model, error) {
	h, err := parseLlama2CHeader(data)
	if err != nil {
		return nil, err
	}
	c := h.cfg
	d, f, l, v := int64(c.Dim), int64(c.HiddenDim), int64(c.Layers), int64(c.VocabSize)
	kv := int64(c.KVDim())
	hs := int64(c.HeadSize())
	sizes := map[string]int64{
		"emb": v * d, "attnNorm": l * d, "ffnNorm": l * d, "final": d,
		"wq": l * d * d, "wk": l * kv * d, "wv": l * kv * d, "wo": l * d * d,
		"w1": l * f * d, "w2": l * d * f, "w3": l * f * d,
		"rope": 2 * int64(c.SeqLen) * hs / 2, "cls": v * d,
	}
	var order []string
	if h.version == 0 {
		order = []string{"emb", "attnNorm", "wq", "wk", "wv", "wo", "ffnNorm", "w1", "w2", "w3", "final", "rope"}
	} else {
		order = []string{"attnNorm", "ffnNorm", "final", "emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3"}
	}
	if !c.SharedClassifier {
		order = append(order, "cls")
	}
	var floats int64
	for _, k := range order {
		floats += sizes[k]
	}
	want := int64(h.offset) + 4*floats
	if got := int64(len(data)); got != want {
		if got < want {
			return nil, fmt.Errorf("%w: %d bytes, the header describes %d", ErrTruncated, got, want)
		}
		return nil, fmt.Errorf("%w: %d bytes, the header describes %d", ErrSizeMismatch, got, want)
	}
	all := float32s(data[h.offset:])
	t := map[string][]float32{}
	var off int64
	for _, k := range order {
		t[k] = all[off : off+sizes[k] : off+sizes[k]]
		off += sizes[k]
	}

	tok, err := tokenizer.LoadLlama2C(tokData)
	if err != nil {
		return nil, tokenizerError(err)
	}
	if err := checkVocab(c, tok); err != nil {
		return nil, err
	}

	m := &Model{format: FormatLlama2C, dtype: "F32", cfg: c, tok: tok, addBOS: true, size: int64(len(data) + len(tokData))}
	dim, hid, kvd := c.Dim, c.HiddenDim, c.KVDim()
	mat := func(k string, layer, rows, cols int) matrix {
		n := rows * cols
		return matrix{rows: rows, cols: cols, f32: t[k][layer*n : (layer+1)*n : (layer+1)*n]}
	}
	m.w.tokEmb = matrix{rows: c.VocabSize, cols: dim, f32: t["emb"]}
	m.w.cls = m.w.tokEmb
	if !c.SharedClassifier {
		m.w.cls = matrix{rows: c.VocabSize, cols: dim, f32: t["cls"]}
	}
	m.w.finalNorm = t["final"]
	for i := range c.Layers {
		m.w.layers = append(m.w.layers, layerWeights{
			attnNorm: t["attnNorm"][i*dim : (i+1)*dim],
			ffnNorm:  t["ffnNorm"][i*dim : (i+1)*dim],
			wq:       mat("wq", i, dim, dim),
			wk:       mat("wk", i, kvd, dim),
			wv:       mat("wv", i, kvd, dim),
			wo:       mat("wo", i, dim, dim),
			w1:       mat("w1", i, hid, dim),
			w2:       mat("w2", i, dim, hid),
			w3:       mat("w3", i, hid, dim),
		})
	}
	return m, nil
}
