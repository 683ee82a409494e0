// Package lm fine-tunes a LLaMA-architecture language model of the
// engine's registry (tolstoy-1m, the embedded default) on a text, in pure
// Go, as llm.c trains GPT-2 in C: a forward pass that keeps its
// activations, a backward pass written out by hand for every operation
// (RMSNorm, attention with rotary embeddings, the SwiGLU feed-forward
// layer, the embedding and the classifier), and AdamW.
//
// Training is deterministic bit for bit: every sum runs in a fixed order,
// each sequence of a batch has its own gradient buffer, and the buffers
// are added in sequence order, so the number of goroutines changes the
// speed and never the weights. The exponential is computed in Go alone
// (math.Exp has assembly versions whose last bit may differ between
// architectures) and products are rounded to float32 before they are
// added, so no fused multiply-add can change a result.
//
// Imported by package jobkind (a training job on a miner) and the CLI
// (aitbc model finetune); it imports the engine, never the reverse.
package lm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"

	"github.com/aitbc/aitbc/internal/engine"
)

// shape is the configuration the passes need, with the derived widths.
type shape struct {
	dim, hidden, layers, heads, kvHeads, vocab, headSize, kvDim int
	eps                                                         float32
	theta                                                       float32
	shared                                                      bool
}

func shapeOf(c engine.Config) shape {
	return shape{
		dim: c.Dim, hidden: c.HiddenDim, layers: c.Layers, heads: c.Heads, kvHeads: c.KVHeads,
		vocab: c.VocabSize, headSize: c.HeadSize(), kvDim: c.KVDim(), eps: c.NormEps, theta: c.RopeTheta,
		shared: c.SharedClassifier,
	}
}

// layout are the offsets of the tensors in the flat parameter vector:
// the token embedding, each layer's tensors in the order of layerOff, the
// final norm, and the classifier when it is not shared.
type layout struct {
	emb       int
	layer     []layerOff
	finalNorm int
	cls       int // == emb when shared
	total     int
}

type layerOff struct{ attnNorm, wq, wk, wv, wo, ffnNorm, w1, w2, w3 int }

func layoutOf(s shape) layout {
	var l layout
	n := 0
	take := func(k int) int { o := n; n += k; return o }
	l.emb = take(s.vocab * s.dim)
	for range s.layers {
		var o layerOff
		o.attnNorm = take(s.dim)
		o.wq = take(s.dim * s.dim)
		o.wk = take(s.kvDim * s.dim)
		o.wv = take(s.kvDim * s.dim)
		o.wo = take(s.dim * s.dim)
		o.ffnNorm = take(s.dim)
		o.w1 = take(s.hidden * s.dim)
		o.w2 = take(s.dim * s.hidden)
		o.w3 = take(s.hidden * s.dim)
		l.layer = append(l.layer, o)
	}
	l.finalNorm = take(s.dim)
	l.cls = l.emb
	if !s.shared {
		l.cls = take(s.vocab * s.dim)
	}
	l.total = n
	return l
}

// flatten copies t into one vector in the layout's order.
func flatten(t *engine.Tensors, l layout) []float32 {
	p := make([]float32, l.total)
	copy(p[l.emb:], t.TokEmb)
	for i, lt := range t.Layers {
		o := l.layer[i]
		copy(p[o.attnNorm:], lt.AttnNorm)
		copy(p[o.wq:], lt.WQ)
		copy(p[o.wk:], lt.WK)
		copy(p[o.wv:], lt.WV)
		copy(p[o.wo:], lt.WO)
		copy(p[o.ffnNorm:], lt.FFNNorm)
		copy(p[o.w1:], lt.W1)
		copy(p[o.w2:], lt.W2)
		copy(p[o.w3:], lt.W3)
	}
	copy(p[l.finalNorm:], t.FinalNorm)
	if len(t.Cls) > 0 {
		copy(p[l.cls:], t.Cls)
	}
	return p
}

// unflatten returns tensors that are copies of p's parts.
func unflatten(c engine.Config, p []float32, l layout) *engine.Tensors {
	s := shapeOf(c)
	cp := func(off, n int) []float32 { return append([]float32(nil), p[off:off+n]...) }
	t := &engine.Tensors{Config: c, TokEmb: cp(l.emb, s.vocab*s.dim), FinalNorm: cp(l.finalNorm, s.dim)}
	if !s.shared {
		t.Cls = cp(l.cls, s.vocab*s.dim)
	}
	for _, o := range l.layer {
		t.Layers = append(t.Layers, engine.LayerTensors{
			AttnNorm: cp(o.attnNorm, s.dim), FFNNorm: cp(o.ffnNorm, s.dim),
			WQ: cp(o.wq, s.dim*s.dim), WK: cp(o.wk, s.kvDim*s.dim), WV: cp(o.wv, s.kvDim*s.dim),
			WO: cp(o.wo, s.dim*s.dim), W1: cp(o.w1, s.hidden*s.dim), W2: cp(o.w2, s.dim*s.hidden),
			W3: cp(o.w3, s.hidden*s.dim),
		})
	}
	return t
}

// WeightsSHA256 is the hash of the weights' float32 bits, little-endian,
// in the layout's order: two runs agree on it exactly when every weight
// is the same bit for bit.
func WeightsSHA256(p []float32) string {
	h := sha256.New()
	var buf [4096]byte
	for i := 0; i < len(p); {
		n := 0
		for ; n+4 <= len(buf) && i < len(p); i++ {
			binary.LittleEndian.PutUint32(buf[n:], math.Float32bits(p[i]))
			n += 4
		}
		h.Write(buf[:n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TensorsSHA256 is WeightsSHA256 of a model's tensors: a model imported
// from a fine-tuning result has the hash the run reported.
func TensorsSHA256(t *engine.Tensors) string {
	return WeightsSHA256(flatten(t, layoutOf(shapeOf(t.Config))))
}
