package engine

import (
	"context"
	"fmt"
)

// Batched prompt processing. Generation is a matrix-vector product per
// matrix and token, so every token streams all the weights from memory.
// The prompt's tokens are all known, so they go through each layer
// together, up to maxBatch at a time: each thread takes a few weight rows
// (batchRows, a few KB, which stay in its L1 cache) and multiplies them
// with every token of the batch before moving on, so the weights are read
// once per batch instead of once per token (a matrix-matrix product), and
// Q4_K rows are decoded once per four tokens (gguf.DotQ8Kx4).
//
// Every dot product is computed by the same kernel on the same inputs as
// in Forward, and attention, RoPE and norms are the per-token functions,
// so a prefilled position is bit for bit the position Forward computes
// (TestPrefillMatchesForward).

const (
	// maxBatch bounds the tokens processed together (and the batch
	// buffers: maxBatch × (3·Dim + 2·HiddenDim) floats plus their 8-bit
	// forms).
	maxBatch = 32
	// batchRows is how many rows of a matrix meet every token of the batch
	// before the next rows are read.
	batchRows = 16
)

// batch holds the per-token buffers of a batch.
type batch struct {
	n             int // tokens in the current batch
	x, xb, xb2, q [][]float32
	hb, hb2       [][]float32
	kout, vout    [][]float32 // the batch's rows of this layer's KV cache
	// qT and attT are per head: eight tokens' queries transposed (8·hs)
	// and their scores (8·attStride), for attnScores8. attT grows with the
	// positions prefilled (growAttT), so a session with a long context
	// does not hold eight score rows per head for all of it.
	qT, attT         []float32
	attStride        int
	in               []acts
	jobQKV, jobAtt   *job
	jobWO            *job
	jobFFN1, jobFFN2 *job
	// logits are the batch's rows of logits, made on the first prefill
	// that asks for them (len(x) × VocabSize floats: 16 MB for a
	// 128k-token vocabulary and 32 tokens); the head job projects tokens
	// headFrom..n-1 of the batch.
	logits   [][]float32
	headFrom int
	jobHead  *job
}

// newBatch allocates the buffers of batches of up to size tokens (once per
// session, on first use, sized for that first prompt: a short prompt does
// not pay for 32 tokens' buffers).
func (s *Session) newBatch(size int) *batch {
	c := s.cfg
	b := &batch{}
	mk := func(n int) [][]float32 {
		v := make([][]float32, size)
		for i := range v {
			v[i] = make([]float32, n)
		}
		return v
	}
	b.x, b.xb, b.xb2, b.q = mk(c.Dim), mk(c.Dim), mk(c.Dim), mk(c.Dim)
	b.hb, b.hb2 = mk(c.HiddenDim), mk(c.HiddenDim)
	b.kout, b.vout = make([][]float32, size), make([][]float32, size)
	b.in = make([]acts, size)
	if hasAVX2 && size >= 8 {
		b.qT = make([]float32, 8*c.Dim)
	}
	longest := make([]float32, max(c.Dim, c.HiddenDim))
	for i := range b.in {
		b.in[i].set(longest, s.needs) // size the 8-bit forms now
	}
	groups := func(rows int) int { return (rows + rowGroup - 1) / rowGroup }
	kv := c.KVDim()
	p := s.pool
	b.jobQKV = p.newJob(s.runQKVBatch, groups(c.Dim+2*kv))
	b.jobAtt = p.newJob(s.runAttentionBatch, c.Heads)
	b.jobWO = p.newJob(s.runWOBatch, groups(c.Dim))
	b.jobFFN1 = p.newJob(s.runFFN1Batch, groups(c.HiddenDim))
	b.jobFFN2 = p.newJob(s.runFFN2Batch, groups(c.Dim))
	b.jobHead = p.newJob(s.runHeadBatch, groups(c.VocabSize))
	return b
}

// Prefill runs the model on tokens at positions pos0, pos0+1, ... in
// batches, filling the KV cache, without computing logits: what the
// prompt's tokens before the last one need. The session must hold all
// layers and positions 0..pos0-1. It checks ctx between batches.
func (s *Session) Prefill(ctx context.Context, tokens []int, pos0 int) error {
	return s.prefill(ctx, tokens, pos0, 0, nil, nil)
}

// prefill is Prefill; onHidden, when not nil, is called with each token's
// final-normed hidden state (see PrefillHidden in commit.go), and
// onLogits with the logits of each token at a position from logitsFrom on
// (PrefillLogits): the classifier is the largest matrix of a small model,
// so positions whose logits nobody reads skip it.
func (s *Session) prefill(ctx context.Context, tokens []int, pos0, logitsFrom int, onHidden, onLogits func(pos int, v []float32)) error {
	if s.first != 0 || s.last != s.cfg.Layers {
		return fmt.Errorf("%w: session holds layers [%d, %d) of %d", ErrLayerRange, s.first, s.last, s.cfg.Layers)
	}
	if pos0 < 0 || pos0+len(tokens) > s.maxPos {
		return fmt.Errorf("%w: positions %d..%d, session holds %d", ErrPosition, pos0, pos0+len(tokens)-1, s.maxPos)
	}
	for l := range s.cfg.Layers {
		if pos0 > s.filled[l] {
			return fmt.Errorf("%w: position %d but layer %d holds only %d positions", ErrPosition, pos0, l, s.filled[l])
		}
	}
	for _, t := range tokens {
		if t < 0 || t >= s.cfg.VocabSize {
			return fmt.Errorf("%w: %d of %d", ErrTokenID, t, s.cfg.VocabSize)
		}
	}
	if len(tokens) > 0 && s.batch == nil {
		s.batch = s.newBatch(min(maxBatch, len(tokens)))
	}
	b := s.batch
	for start := 0; start < len(tokens); start += len(b.x) {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := tokens[start:min(start+len(b.x), len(tokens))]
		b.n = len(chunk)
		for i, t := range chunk {
			s.m.w.tokEmb.row(b.x[i], t)
		}
		s.pos = pos0 + start
		for l := range s.cfg.Layers {
			s.layerBatch(l)
			s.filled[l] = s.pos + b.n
		}
		if onHidden != nil {
			s.emitHidden(b, onHidden)
		}
		if onLogits != nil {
			s.headBatch(b, logitsFrom, onLogits)
		}
	}
	return nil
}

// headBatch computes the logits of the batch's tokens at positions from
// logitsFrom on and calls f with each, in order of position. Head
// multiplies the classifier with one hidden state, reading all of it per
// token; here each thread takes a few rows and multiplies them with every
// needed token (mulRowsBatch), so the classifier is read once per batch.
// The final norm and the products are Head's (rmsnorm on the same
// residual, kernels that give the one-vector values bit for bit), so each
// token's logits are bit for bit Head's (TestPrefillHeadMatchesHead).
func (s *Session) headBatch(b *batch, logitsFrom int, f func(pos int, logits []float32)) {
	k := max(logitsFrom-s.pos, 0)
	if k >= b.n {
		return
	}
	if b.logits == nil {
		b.logits = make([][]float32, len(b.x))
		for i := range b.logits {
			b.logits[i] = make([]float32, s.cfg.VocabSize)
		}
	}
	// After the last layer b.xb is scratch: it takes the normed states.
	for i := k; i < b.n; i++ {
		rmsnorm(b.xb[i], b.x[i], s.m.w.finalNorm, s.cfg.NormEps)
		b.in[i].set(b.xb[i], s.needs)
	}
	b.headFrom = k
	s.pool.run(b.jobHead)
	for i := k; i < b.n; i++ {
		f(s.pos+i, b.logits[i])
	}
}

// layerBatch runs layer l on the batch's tokens at positions s.pos,
// s.pos+1, ..., as layer does for one token.
func (s *Session) layerBatch(l int) {
	w := &s.m.w.layers[l]
	b := s.batch
	c := &s.cfg
	s.cur = l
	kv := c.KVDim()
	for i := range b.n {
		rmsnorm(b.xb[i], b.x[i], w.attnNorm, c.NormEps)
		b.in[i].set(b.xb[i], s.needs)
		pos := s.pos + i
		b.kout[i] = s.kcache[l][pos*kv : (pos+1)*kv]
		b.vout[i] = s.vcache[l][pos*kv : (pos+1)*kv]
	}
	s.pool.run(b.jobQKV)
	scale := c.RopeFreqScale
	if scale == 0 {
		scale = 1
	}
	for i := range b.n {
		pos := s.pos + i
		k := s.kcache[l][pos*kv : (pos+1)*kv]
		addBias(b.q[i], w.bq)
		addBias(k, w.bk)
		addBias(s.vcache[l][pos*kv:(pos+1)*kv], w.bv)
		if s.ropePos != pos {
			ropeTable(s.cos, s.sin, s.freqs, s.m.w.ropeFactors, scale, pos)
			s.ropePos = pos
		}
		if c.RopeNeox {
			ropeNeox(b.q[i], s.cos, s.sin)
			ropeNeox(k, s.cos, s.sin)
		} else {
			rope(b.q[i], s.cos, s.sin)
			rope(k, s.cos, s.sin)
		}
	}
	if b.qT != nil {
		b.growAttT(s.pos+b.n, c.Heads, s.maxPos)
	}
	s.pool.run(b.jobAtt)
	for i := range b.n {
		b.in[i].set(b.xb[i], s.needs)
	}
	s.pool.run(b.jobWO)
	for i := range b.n {
		addBias(b.xb2[i], w.bo)
		x := b.x[i]
		for j := range x {
			x[j] += b.xb2[i][j]
		}
		rmsnorm(b.xb[i], x, w.ffnNorm, c.NormEps)
		b.in[i].set(b.xb[i], s.needs)
	}
	s.pool.run(b.jobFFN1)
	for i := range b.n {
		b.in[i].set(b.hb[i], s.needs)
	}
	s.pool.run(b.jobFFN2)
	for i := range b.n {
		x := b.x[i]
		for j := range x {
			x[j] += b.xb[i][j]
		}
	}
}

// growAttT makes room for the scores of keys 0..n-1 of every head, doubling
// (up to maxPos) so that a long prefill reallocates a few times only. It
// runs before the attention job is dispatched, never under it.
func (b *batch) growAttT(n, heads, maxPos int) {
	if n <= b.attStride {
		return
	}
	b.attStride = min(max(n, 2*b.attStride), maxPos)
	b.attT = make([]float32, 8*heads*b.attStride)
}

// eachRows calls f for sub-ranges of at most batchRows rows of [lo, hi).
func eachRows(lo, hi int, f func(r0, r1 int)) {
	for r := lo; r < hi; r += batchRows {
		f(r, min(r+batchRows, hi))
	}
}

func (s *Session) runQKVBatch(glo, ghi int) {
	w := &s.m.w.layers[s.cur]
	b := s.batch
	kv := s.cfg.KVDim()
	dim := s.cfg.Dim
	lo, hi := rows(glo, ghi, dim+2*kv)
	eachRows(lo, hi, func(r0, r1 int) {
		mulSegmentBatch(&w.wq, b.q, b.in, b.n, 0, r0, r1)
		mulSegmentBatch(&w.wk, b.kout, b.in, b.n, dim, r0, r1)
		mulSegmentBatch(&w.wv, b.vout, b.in, b.n, dim+kv, r0, r1)
	})
}

// mulSegmentBatch is mulSegment for the batch's n vectors.
func mulSegmentBatch(m *matrix, outs [][]float32, as []acts, n, base, lo, hi int) {
	r0, r1 := max(lo-base, 0), min(hi-base, m.rows)
	if r0 < r1 {
		m.mulRowsBatch(outs, as, n, r0, r1)
	}
}

// runAttentionBatch computes heads [h0, h1) for every token of the batch;
// token i attends to positions 0..s.pos+i (whose keys and values the QKV
// step has just written for the batch's own tokens). With AVX2, eight
// tokens at a time take their scores together (attnScores8: each key is
// read once for the eight, and the eight sums run in the lanes of one
// vector), each score the value attnScores gives; the remaining tokens,
// and other CPUs, go one by one.
func (s *Session) runAttentionBatch(h0, h1 int) {
	c := &s.cfg
	b := s.batch
	hs := c.HeadSize()
	kv := c.KVDim()
	kvMul := c.Heads / c.KVHeads
	kc, vc := s.kcache[s.cur], s.vcache[s.cur]
	scale := sqrtf(float32(hs))
	i := 0
	for ; b.qT != nil && i+8 <= b.n; i += 8 {
		n := s.pos + i + 8 // keys the last of the eight attends to
		for h := h0; h < h1; h++ {
			off := (h / kvMul) * hs
			qT := b.qT[h*8*hs : (h+1)*8*hs]
			for t := range 8 {
				for j, v := range b.q[i+t][h*hs : (h+1)*hs] {
					qT[j*8+t] = v
				}
			}
			attT := b.attT[h*8*b.attStride:][:8*n]
			attnScores8(attT, qT, kc[off:], kv, n, hs, scale)
			for t := range 8 {
				att := s.att[h*s.maxPos : h*s.maxPos+n-7+t] // causal: keys 0..s.pos+i+t
				for p := range att {
					att[p] = attT[p*8+t]
				}
				softmax(att)
				attnMix(b.xb[i+t][h*hs:(h+1)*hs], att, vc[off:], kv)
			}
		}
	}
	for ; i < b.n; i++ {
		pos := s.pos + i
		for h := h0; h < h1; h++ {
			q := b.q[i][h*hs : (h+1)*hs]
			att := s.att[h*s.maxPos : h*s.maxPos+pos+1]
			off := (h / kvMul) * hs
			attnScores(att, q, kc[off:], kv, scale)
			softmax(att)
			attnMix(b.xb[i][h*hs:(h+1)*hs], att, vc[off:], kv)
		}
	}
}

func (s *Session) runWOBatch(glo, ghi int) {
	w := &s.m.w.layers[s.cur]
	b := s.batch
	lo, hi := rows(glo, ghi, s.cfg.Dim)
	eachRows(lo, hi, func(r0, r1 int) {
		w.wo.mulRowsBatch(b.xb2, b.in, b.n, r0, r1)
	})
}

func (s *Session) runFFN1Batch(glo, ghi int) {
	w := &s.m.w.layers[s.cur]
	b := s.batch
	lo, hi := rows(glo, ghi, s.cfg.HiddenDim)
	eachRows(lo, hi, func(r0, r1 int) {
		w.w1.mulRowsBatch(b.hb, b.in, b.n, r0, r1)
		w.w3.mulRowsBatch(b.hb2, b.in, b.n, r0, r1)
		for i := range b.n {
			swiglu(b.hb[i][r0:r1], b.hb2[i][r0:r1])
		}
	})
}

func (s *Session) runFFN2Batch(glo, ghi int) {
	w := &s.m.w.layers[s.cur]
	b := s.batch
	lo, hi := rows(glo, ghi, s.cfg.Dim)
	eachRows(lo, hi, func(r0, r1 int) {
		w.w2.mulRowsBatch(b.xb, b.in, b.n, r0, r1)
	})
}

// runHeadBatch computes rows [glo, ghi) (in row groups) of the logits of
// the batch's tokens headFrom..n-1.
func (s *Session) runHeadBatch(glo, ghi int) {
	b := s.batch
	k := b.headFrom
	lo, hi := rows(glo, ghi, s.cfg.VocabSize)
	eachRows(lo, hi, func(r0, r1 int) {
		s.m.w.cls.mulRowsBatch(b.logits[k:], b.in[k:], b.n-k, r0, r1)
	})
}
