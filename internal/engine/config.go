package engine

import "fmt"

// Config is a model's architecture.
type Config struct {
	Dim              int     `json:"dim"`        // width of the hidden state
	HiddenDim        int     `json:"hidden_dim"` // width of the SwiGLU feed-forward layer
	Layers           int     `json:"layers"`
	Heads            int     `json:"heads"`    // query heads
	KVHeads          int     `json:"kv_heads"` // key/value heads (fewer than Heads: grouped-query attention)
	VocabSize        int     `json:"vocab_size"`
	SeqLen           int     `json:"seq_len"` // context length
	NormEps          float32 `json:"norm_eps"`
	RopeTheta        float32 `json:"rope_theta"`
	SharedClassifier bool    `json:"shared_classifier"` // the classifier is the token embedding
	// Arch is the GGUF architecture: "llama" (also for llama2.c files)
	// or "qwen2"; empty in model.json files written before it existed.
	Arch string `json:"arch,omitempty"`
	// RopeNeox rotates the pairs (i, i+head/2) of each head (GGML's NEOX
	// layout, qwen2) instead of (2i, 2i+1) (llama).
	RopeNeox bool `json:"rope_neox,omitempty"`
	// RopeFreqScale multiplies every rotary angle (linear RoPE scaling:
	// 1/factor); 0 means 1.
	RopeFreqScale float32 `json:"rope_freq_scale,omitempty"`
}

// HeadSize is the width of one attention head.
func (c Config) HeadSize() int { return c.Dim / c.Heads }

// KVDim is the width of the keys and values of one position.
func (c Config) KVDim() int { return c.HeadSize() * c.KVHeads }

// Params is the number of weights, counting a shared classifier once.
func (c Config) Params() int64 {
	d, f, l, v := int64(c.Dim), int64(c.HiddenDim), int64(c.Layers), int64(c.VocabSize)
	kv := int64(c.KVDim())
	perLayer := 2*d + d*d + 2*d*kv + d*d + 3*d*f
	n := v*d + l*perLayer + d
	if !c.SharedClassifier {
		n += v * d
	}
	return n
}

// Limits on header values: generous for real models, small enough that
// size arithmetic cannot overflow int64.
const (
	maxDim    = 1 << 16
	maxHidden = 1 << 18
	maxLayers = 1 << 10
	maxHeads  = 1 << 10
	maxVocab  = 1 << 22
	maxSeqLen = 1 << 22
)

// validate checks that the configuration describes a model the forward
// pass can run.
func (c Config) validate() error {
	check := func(name string, v, hi int) error {
		if v < 1 || v > hi {
			return fmt.Errorf("%w: %s %d outside 1..%d", ErrInvalidHeader, name, v, hi)
		}
		return nil
	}
	for _, f := range []struct {
		name  string
		v, hi int
	}{
		{"dim", c.Dim, maxDim}, {"hidden_dim", c.HiddenDim, maxHidden}, {"n_layers", c.Layers, maxLayers},
		{"n_heads", c.Heads, maxHeads}, {"n_kv_heads", c.KVHeads, maxHeads},
		{"vocab_size", c.VocabSize, maxVocab}, {"seq_len", c.SeqLen, maxSeqLen},
	} {
		if err := check(f.name, f.v, f.hi); err != nil {
			return err
		}
	}
	if c.Dim%c.Heads != 0 || c.HeadSize()%2 != 0 {
		return fmt.Errorf("%w: dim %d is not n_heads %d times an even head size", ErrInvalidHeader, c.Dim, c.Heads)
	}
	if c.KVHeads > c.Heads || c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("%w: n_heads %d is not a multiple of n_kv_heads %d", ErrInvalidHeader, c.Heads, c.KVHeads)
	}
	if !(c.NormEps > 0 && c.NormEps < 1) {
		return fmt.Errorf("%w: norm epsilon %v", ErrInvalidHeader, c.NormEps)
	}
	if c.RopeFreqScale != 0 && !(c.RopeFreqScale > 0 && c.RopeFreqScale <= 1e3) {
		return fmt.Errorf("%w: rope frequency scale %v", ErrInvalidHeader, c.RopeFreqScale)
	}
	if !(c.RopeTheta >= 1 && c.RopeTheta < 1e12) {
		return fmt.Errorf("%w: rope theta %v", ErrInvalidHeader, c.RopeTheta)
	}
	return nil
}
