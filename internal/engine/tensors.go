package engine

import (
	"fmt"
)

// Tensors are a model's weights as float32 copies that a trainer may
// change (package train/lm fine-tunes them), in the engine's layout:
// matrices row-major [out][in], as the forward pass reads them.
type Tensors struct {
	Config    Config
	TokEmb    []float32 // VocabSize × Dim
	Layers    []LayerTensors
	FinalNorm []float32 // Dim
	// Cls is the classifier (VocabSize × Dim); nil when the model shares
	// the token embedding (Config.SharedClassifier).
	Cls []float32
}

// LayerTensors are one transformer block's weights.
type LayerTensors struct {
	AttnNorm, FFNNorm []float32 // Dim
	WQ, WO            []float32 // Dim × Dim
	WK, WV            []float32 // KVDim × Dim
	W1, W3            []float32 // HiddenDim × Dim (gate, up)
	W2                []float32 // Dim × HiddenDim (down)
}

// Tensors copies the model's weights into float32 (quantised matrices are
// dequantised). Only what the trainer implements is accepted: the llama
// architecture with the interleaved rotary layout, no biases, no rotary
// frequency factors or scaling; anything else is ErrUnsupported, named.
func (m *Model) Tensors() (*Tensors, error) {
	c := m.cfg
	switch {
	case c.Arch != "" && c.Arch != "llama":
		return nil, fmt.Errorf("%w: fine-tuning implements the llama architecture, not %s", ErrUnsupported, c.Arch)
	case c.RopeNeox:
		return nil, fmt.Errorf("%w: fine-tuning implements the interleaved rotary layout only", ErrUnsupported)
	case c.RopeFreqScale != 0 && c.RopeFreqScale != 1, m.w.ropeFactors != nil:
		return nil, fmt.Errorf("%w: fine-tuning does not implement rotary scaling", ErrUnsupported)
	}
	t := &Tensors{Config: c, TokEmb: m.w.tokEmb.floats(), FinalNorm: clone32(m.w.finalNorm)}
	if !c.SharedClassifier {
		t.Cls = m.w.cls.floats()
	}
	for i, l := range m.w.layers {
		if l.bq != nil || l.bk != nil || l.bv != nil || l.bo != nil {
			return nil, fmt.Errorf("%w: layer %d has attention biases, which fine-tuning does not implement", ErrUnsupported, i)
		}
		t.Layers = append(t.Layers, LayerTensors{
			AttnNorm: clone32(l.attnNorm), FFNNorm: clone32(l.ffnNorm),
			WQ: l.wq.floats(), WK: l.wk.floats(), WV: l.wv.floats(), WO: l.wo.floats(),
			W1: l.w1.floats(), W2: l.w2.floats(), W3: l.w3.floats(),
		})
	}
	return t, nil
}

// WithTensors returns a model named name with m's configuration and
// tokenizer and the weights t, stored as float32 (WriteGGUF writes it).
// t's slices are used, not copied: they must not change afterwards.
func (m *Model) WithTensors(name string, t *Tensors) (*Model, error) {
	c := m.cfg
	if t.Config != c {
		return nil, fmt.Errorf("%w: tensors of another configuration", ErrBuffer)
	}
	d, f, kv, v := c.Dim, c.HiddenDim, c.KVDim(), c.VocabSize
	check := func(what string, x []float32, n int) error {
		if len(x) != n {
			return fmt.Errorf("%w: %s has %d values, want %d", ErrBuffer, what, len(x), n)
		}
		return nil
	}
	if len(t.Layers) != c.Layers {
		return nil, fmt.Errorf("%w: %d layers, want %d", ErrBuffer, len(t.Layers), c.Layers)
	}
	errs := []error{check("token embedding", t.TokEmb, v*d), check("final norm", t.FinalNorm, d)}
	if !c.SharedClassifier {
		errs = append(errs, check("classifier", t.Cls, v*d))
	}
	for i, l := range t.Layers {
		p := fmt.Sprintf("layer %d ", i)
		errs = append(errs,
			check(p+"attn_norm", l.AttnNorm, d), check(p+"ffn_norm", l.FFNNorm, d),
			check(p+"wq", l.WQ, d*d), check(p+"wk", l.WK, kv*d), check(p+"wv", l.WV, kv*d), check(p+"wo", l.WO, d*d),
			check(p+"w1", l.W1, f*d), check(p+"w2", l.W2, d*f), check(p+"w3", l.W3, f*d))
	}
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	n := &Model{
		name: name, format: FormatGGUF, cfg: c, tok: m.tok, addBOS: m.addBOS,
		endTurn: m.endTurn, chatTemplate: m.chatTemplate, dtype: "F32", size: 4 * c.Params(),
	}
	mat := func(x []float32, rows, cols int) matrix { return matrix{rows: rows, cols: cols, f32: x} }
	n.w.tokEmb = mat(t.TokEmb, v, d)
	n.w.cls = n.w.tokEmb
	if !c.SharedClassifier {
		n.w.cls = mat(t.Cls, v, d)
	}
	n.w.finalNorm = t.FinalNorm
	for _, l := range t.Layers {
		n.w.layers = append(n.w.layers, layerWeights{
			attnNorm: l.AttnNorm, ffnNorm: l.FFNNorm,
			wq: mat(l.WQ, d, d), wk: mat(l.WK, kv, d), wv: mat(l.WV, kv, d), wo: mat(l.WO, d, d),
			w1: mat(l.W1, f, d), w2: mat(l.W2, d, f), w3: mat(l.W3, f, d),
		})
	}
	return n, nil
}

// floats returns the matrix as a new float32 slice.
func (m *matrix) floats() []float32 {
	out := make([]float32, m.rows*m.cols)
	for r := range m.rows {
		m.row(out[r*m.cols:(r+1)*m.cols], r)
	}
	return out
}

func clone32(x []float32) []float32 { return append([]float32(nil), x...) }
