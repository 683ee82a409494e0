package lm

import (
	"math"
	"testing"
)

// tinyShape is a configuration small enough for finite differences, with
// grouped-query attention (two query heads share one key/value head).
func tinyShape(shared bool) shape {
	return shape{dim: 8, hidden: 12, layers: 2, heads: 2, kvHeads: 1, vocab: 13, headSize: 4, kvDim: 4,
		eps: 1e-5, theta: 10000, shared: shared}
}

func randParams(l layout, s shape, seed uint64) []float32 {
	r := splitmix(seed)
	p := make([]float32, l.total)
	for i := range p {
		p[i] = float32(float64(r.next()>>11)/(1<<53)-0.5) * 0.6
	}
	// norms near one, as trained models have them
	for _, o := range l.layer {
		for j := range s.dim {
			p[o.attnNorm+j] += 1
			p[o.ffnNorm+j] += 1
		}
	}
	for j := range s.dim {
		p[l.finalNorm+j] += 1
	}
	return p
}

// TestGradientMatchesFiniteDifferences compares the analytic gradient of
// every tensor (embedding, norms, attention and feed-forward matrices,
// classifier shared or not) with central differences of the loss.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	for _, shared := range []bool{false, true} {
		s := tinyShape(shared)
		l := layoutOf(s)
		p := randParams(l, s, 7)
		tokens := []int{3, 1, 4, 1, 5, 9, 2}
		targets := []int{1, 4, 1, 5, 9, 2, 6}
		T := len(tokens)
		a := newActs(s, T)
		rt := newRope(s, T)
		scale := float32(1) / float32(T)
		g := make([]float32, l.total)
		forward(p, l, a, rt, tokens, targets)
		backward(p, g, l, a, rt, tokens, targets, scale)
		loss := func() float64 { return forward(p, l, a, rt, tokens, targets) * float64(scale) }

		type span struct {
			name     string
			off, len int
		}
		spans := []span{{"emb", l.emb, s.vocab * s.dim}, {"final_norm", l.finalNorm, s.dim}}
		if !shared {
			spans = append(spans, span{"cls", l.cls, s.vocab * s.dim})
		}
		for _, o := range l.layer {
			spans = append(spans,
				span{"attn_norm", o.attnNorm, s.dim}, span{"wq", o.wq, s.dim * s.dim},
				span{"wk", o.wk, s.kvDim * s.dim}, span{"wv", o.wv, s.kvDim * s.dim},
				span{"wo", o.wo, s.dim * s.dim}, span{"ffn_norm", o.ffnNorm, s.dim},
				span{"w1", o.w1, s.hidden * s.dim}, span{"w2", o.w2, s.dim * s.hidden},
				span{"w3", o.w3, s.hidden * s.dim})
		}
		r := splitmix(3)
		checked, nonzero := 0, 0
		for _, sp := range spans {
			idx := []int{}
			if sp.name == "emb" { // rows of tokens in the sequence (shared: also read as classifier)
				idx = append(idx, 3*s.dim+2, 1*s.dim+5, 9*s.dim)
			}
			for range 6 {
				idx = append(idx, r.intn(sp.len))
			}
			for _, j := range idx {
				i := sp.off + j
				const h = 1e-2
				orig := p[i]
				p[i] = orig + h
				up := loss()
				p[i] = orig - h
				down := loss()
				p[i] = orig
				num := (up - down) / (2 * h)
				ana := float64(g[i])
				if d := math.Abs(num - ana); d > 2e-4+0.03*math.Max(math.Abs(num), math.Abs(ana)) {
					t.Errorf("shared=%v %s[%d]: analytic %.6g, finite differences %.6g", shared, sp.name, j, ana, num)
				}
				checked++
				if math.Abs(ana) > 1e-3 {
					nonzero++
				}
			}
		}
		if nonzero < checked/2 {
			t.Fatalf("only %d of %d checked gradients are non-zero: the check proves little", nonzero, checked)
		}
	}
}
