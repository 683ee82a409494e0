package engine

import (
	"fmt"
	"runtime"
)

// SessionOptions configure a Session.
type SessionOptions struct {
	// Threads is the number of goroutines that share each matrix product;
	// 0 means runtime.GOMAXPROCS(0).
	Threads int
	// FirstLayer and LastLayer bound the layers [FirstLayer, LastLayer)
	// whose KV cache the session keeps; both 0 means all layers. A miner
	// serving part of a model allocates only its share.
	FirstLayer, LastLayer int
	// MaxPos is the number of positions the KV cache holds; 0 means the
	// model's context length.
	MaxPos int
}

// Session is the mutable state of one sequence being processed: the KV
// cache of its layers, scratch buffers and a worker pool. The Model's
// weights are shared read-only, so any number of sessions may run
// concurrently; one Session must be used by one goroutine at a time.
//
// The forward pass is exposed in three steps so that layers can run on
// different machines: Embed, Layers and Head. Forward chains them.
type Session struct {
	m           *Model
	cfg         Config
	first, last int
	maxPos      int
	threads     int

	kcache, vcache [][]float32 // per served layer: maxPos × KVDim
	filled         []int       // per served layer: positions computed so far

	x, xb, xb2, q, hb, hb2 []float32
	att                    []float32 // Heads × maxPos
	logits                 []float32
	freqs, cos, sin        []float32
	ropePos                int

	// The input of the current matrix product, quantised for the
	// model's quantised matrices (needs) before the product is dispatched.
	in    acts
	needs actNeeds

	batch *batch // Prefill's buffers, made on first use

	pool *pool
	// Parameters of the step the pool is running, and the steps themselves
	// (made once, so dispatch does not allocate).
	cur                           int // layer
	pos                           int
	jobQKV, jobAtt, jobWO         *job
	jobFFN1, jobFFN2, jobClassify *job
}

// NewSession returns a session for this model. Close it to stop its
// worker goroutines.
func (m *Model) NewSession(opts SessionOptions) (*Session, error) {
	c := m.cfg
	if opts.Threads < 0 {
		return nil, fmt.Errorf("%w: %d", ErrThreads, opts.Threads)
	}
	threads := opts.Threads
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	first, last := opts.FirstLayer, opts.LastLayer
	if first == 0 && last == 0 {
		last = c.Layers
	}
	if first < 0 || last > c.Layers || first >= last {
		return nil, fmt.Errorf("%w: layers [%d, %d) of a %d-layer model", ErrLayerRange, first, last, c.Layers)
	}
	maxPos := opts.MaxPos
	if maxPos == 0 {
		maxPos = c.SeqLen
	}
	if maxPos < 0 || maxPos > c.SeqLen {
		return nil, fmt.Errorf("%w: %d positions, context is %d", ErrPosition, maxPos, c.SeqLen)
	}
	s := &Session{
		m: m, cfg: c, first: first, last: last, maxPos: maxPos, threads: threads,
		x:       make([]float32, c.Dim),
		xb:      make([]float32, c.Dim),
		xb2:     make([]float32, c.Dim),
		q:       make([]float32, c.Dim),
		hb:      make([]float32, c.HiddenDim),
		hb2:     make([]float32, c.HiddenDim),
		att:     make([]float32, c.Heads*maxPos),
		logits:  make([]float32, c.VocabSize),
		freqs:   ropeFreqs(c.HeadSize(), c.RopeTheta),
		cos:     make([]float32, c.HeadSize()/2),
		sin:     make([]float32, c.HeadSize()/2),
		ropePos: -1,
		filled:  make([]int, last-first),
		pool:    newPool(threads),
	}
	w := &m.w
	s.needs.need(&w.cls)
	for i := range w.layers {
		l := &w.layers[i]
		for _, mm := range []*matrix{&l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w2, &l.w3} {
			s.needs.need(mm)
		}
	}
	// Size the quantised forms for the longest input now, so that the
	// token loop does not allocate.
	s.in.set(make([]float32, max(c.Dim, c.HiddenDim)), s.needs)
	kv := c.KVDim()
	for range last - first {
		s.kcache = append(s.kcache, make([]float32, maxPos*kv))
		s.vcache = append(s.vcache, make([]float32, maxPos*kv))
	}
	groups := func(rows int) int { return (rows + rowGroup - 1) / rowGroup }
	p := s.pool
	s.jobQKV = p.newJob(s.runQKV, groups(c.Dim+2*kv))
	s.jobAtt = p.newJob(s.runAttention, c.Heads)
	s.jobWO = p.newJob(s.runWO, groups(c.Dim))
	s.jobFFN1 = p.newJob(s.runFFN1, groups(c.HiddenDim))
	s.jobFFN2 = p.newJob(s.runFFN2, groups(c.Dim))
	s.jobClassify = p.newJob(s.runClassify, groups(c.VocabSize))
	// A session dropped without Close still stops its workers once it is
	// collected (the pool does not reference the session between steps).
	runtime.AddCleanup(s, func(p *pool) { p.close() }, p)
	return s, nil
}

// Close stops the session's workers. The session must not be used after.
// (A session that is dropped without Close stops them when collected.)
func (s *Session) Close() { s.pool.close() }

// Reset forgets all positions, so the session can start a new sequence.
func (s *Session) Reset() {
	for i := range s.filled {
		s.filled[i] = 0
	}
}

// Config returns the model's configuration.
func (s *Session) Config() Config { return s.cfg }

// Embed writes the embedding of token into hidden (len Dim).
func (s *Session) Embed(token int, hidden []float32) error {
	if token < 0 || token >= s.cfg.VocabSize {
		return fmt.Errorf("%w: %d of %d", ErrTokenID, token, s.cfg.VocabSize)
	}
	if len(hidden) != s.cfg.Dim {
		return fmt.Errorf("%w: hidden state of %d, want %d", ErrBuffer, len(hidden), s.cfg.Dim)
	}
	s.m.w.tokEmb.row(hidden, token)
	return nil
}

// Layers runs layers [a, b) on hidden, the hidden state of the token at
// position pos, in place. The session must keep those layers' caches
// (SessionOptions) and must already hold positions 0..pos-1 for them;
// running a position again overwrites it and forgets the later ones.
func (s *Session) Layers(a, b int, hidden []float32, pos int) error {
	if a < s.first || b > s.last || a > b {
		return fmt.Errorf("%w: layers [%d, %d), session holds [%d, %d)", ErrLayerRange, a, b, s.first, s.last)
	}
	if len(hidden) != s.cfg.Dim {
		return fmt.Errorf("%w: hidden state of %d, want %d", ErrBuffer, len(hidden), s.cfg.Dim)
	}
	if pos < 0 || pos >= s.maxPos {
		return fmt.Errorf("%w: position %d, session holds %d", ErrPosition, pos, s.maxPos)
	}
	for l := a; l < b; l++ {
		if pos > s.filled[l-s.first] {
			return fmt.Errorf("%w: position %d but layer %d holds only %d positions", ErrPosition, pos, l, s.filled[l-s.first])
		}
	}
	if s.ropePos != pos {
		scale := s.cfg.RopeFreqScale
		if scale == 0 {
			scale = 1
		}
		ropeTable(s.cos, s.sin, s.freqs, s.m.w.ropeFactors, scale, pos)
		s.ropePos = pos
	}
	for l := a; l < b; l++ {
		s.layer(l, hidden, pos)
		s.filled[l-s.first] = pos + 1
	}
	return nil
}

// Head applies the final norm and the classifier to hidden and returns
// the logits. The slice belongs to the session and is overwritten by the
// next call; hidden is not modified.
func (s *Session) Head(hidden []float32) ([]float32, error) {
	if len(hidden) != s.cfg.Dim {
		return nil, fmt.Errorf("%w: hidden state of %d, want %d", ErrBuffer, len(hidden), s.cfg.Dim)
	}
	rmsnorm(s.xb, hidden, s.m.w.finalNorm, s.cfg.NormEps)
	s.in.set(s.xb, s.needs)
	s.pool.run(s.jobClassify)
	return s.logits, nil
}

// Forward runs the whole model on token at pos and returns the logits
// (owned by the session, as with Head). The session must hold all layers.
func (s *Session) Forward(token, pos int) ([]float32, error) {
	if err := s.forwardNoHead(token, pos); err != nil {
		return nil, err
	}
	return s.Head(s.x)
}

// forwardNoHead runs the embedding and all layers, leaving the hidden
// state in s.x: enough for prompt tokens, whose logits are not needed.
func (s *Session) forwardNoHead(token, pos int) error {
	if s.first != 0 || s.last != s.cfg.Layers {
		return fmt.Errorf("%w: session holds layers [%d, %d) of %d", ErrLayerRange, s.first, s.last, s.cfg.Layers)
	}
	if err := s.Embed(token, s.x); err != nil {
		return err
	}
	return s.Layers(0, s.cfg.Layers, s.x, pos)
}

// layer runs transformer block l on x at pos, following run.c's forward.
func (s *Session) layer(l int, x []float32, pos int) {
	w := &s.m.w.layers[l]
	s.cur, s.pos = l, pos
	rmsnorm(s.xb, x, w.attnNorm, s.cfg.NormEps)
	s.in.set(s.xb, s.needs)
	s.pool.run(s.jobQKV)
	kv := s.cfg.KVDim()
	k := s.kcache[l-s.first][pos*kv : (pos+1)*kv]
	addBias(s.q, w.bq)
	addBias(k, w.bk)
	addBias(s.vcache[l-s.first][pos*kv:(pos+1)*kv], w.bv)
	if s.cfg.RopeNeox {
		ropeNeox(s.q, s.cos, s.sin)
		ropeNeox(k, s.cos, s.sin)
	} else {
		rope(s.q, s.cos, s.sin)
		rope(k, s.cos, s.sin)
	}
	s.pool.run(s.jobAtt)
	s.in.set(s.xb, s.needs)
	s.pool.run(s.jobWO)
	addBias(s.xb2, w.bo)
	for i := range x {
		x[i] += s.xb2[i]
	}
	rmsnorm(s.xb, x, w.ffnNorm, s.cfg.NormEps)
	s.in.set(s.xb, s.needs)
	s.pool.run(s.jobFFN1)
	s.in.set(s.hb, s.needs)
	s.pool.run(s.jobFFN2)
	for i := range x {
		x[i] += s.xb[i]
	}
}

// rowGroup is the unit of work of the matrix steps: the kernel computes
// four rows at a time, so chunks start on multiples of four.
const rowGroup = 4

// rows converts a range of row groups to rows, capped at n.
func rows(lo, hi, n int) (int, int) { return lo * rowGroup, min(hi*rowGroup, n) }

// runQKV computes q, and this position's k and v straight into the cache;
// its units are row groups of the three products stacked.
func (s *Session) runQKV(glo, ghi int) {
	w := &s.m.w.layers[s.cur]
	kv := s.cfg.KVDim()
	li := s.cur - s.first
	kOut := s.kcache[li][s.pos*kv : (s.pos+1)*kv]
	vOut := s.vcache[li][s.pos*kv : (s.pos+1)*kv]
	dim := s.cfg.Dim
	lo, hi := rows(glo, ghi, dim+2*kv)
	mulSegment(&w.wq, s.q, &s.in, 0, lo, hi)
	mulSegment(&w.wk, kOut, &s.in, dim, lo, hi)
	mulSegment(&w.wv, vOut, &s.in, dim+kv, lo, hi)
}

// mulSegment computes the rows of m that fall in [lo, hi) of a row space
// where m's rows start at base.
func mulSegment(m *matrix, out []float32, x *acts, base, lo, hi int) {
	r0, r1 := max(lo-base, 0), min(hi-base, m.rows)
	if r0 < r1 {
		m.mulRows(out, x, r0, r1)
	}
}

// runAttention computes multi-head attention for this position for heads
// [h0, h1); query head h reads key/value head h/(Heads/KVHeads).
func (s *Session) runAttention(h0, h1 int) {
	c := &s.cfg
	hs := c.HeadSize()
	kv := c.KVDim()
	kvMul := c.Heads / c.KVHeads
	li := s.cur - s.first
	kc, vc := s.kcache[li], s.vcache[li]
	pos := s.pos
	scale := sqrtf(float32(hs))
	for h := h0; h < h1; h++ {
		q := s.q[h*hs : (h+1)*hs]
		att := s.att[h*s.maxPos : h*s.maxPos+pos+1]
		off := (h / kvMul) * hs
		attnScores(att, q, kc[off:], kv, scale)
		softmax(att)
		attnMix(s.xb[h*hs:(h+1)*hs], att, vc[off:], kv)
	}
}

// attnScores sets att[t] = (q · k_t) / scale, where k_t = k[t*stride:]
// [:len(q)]. Each dot product is summed sequentially; four positions are
// computed at once for instruction-level parallelism.
func attnScores(att, q, k []float32, stride int, scale float32) {
	n := len(q)
	t := 0
	for ; t+4 <= len(att); t += 4 {
		k0 := k[t*stride:][:n]
		k1 := k[(t+1)*stride:][:n]
		k2 := k[(t+2)*stride:][:n]
		k3 := k[(t+3)*stride:][:n]
		var s0, s1, s2, s3 float32
		for i, qv := range q {
			s0 += float32(qv * k0[i])
			s1 += float32(qv * k1[i])
			s2 += float32(qv * k2[i])
			s3 += float32(qv * k3[i])
		}
		a := att[t : t+4 : t+4]
		a[0], a[1], a[2], a[3] = s0/scale, s1/scale, s2/scale, s3/scale
	}
	for ; t < len(att); t++ {
		k0 := k[t*stride:][:n]
		var s0 float32
		for i, qv := range q {
			s0 += float32(qv * k0[i])
		}
		att[t] = s0 / scale
	}
}

// attnMixGo sets xb = Σ_t att[t]·v_t, accumulating over t in order for each
// element (as run.c does), four positions per pass over xb.
func attnMixGo(xb, att, v []float32, stride int) {
	n := len(xb)
	clear(xb)
	t := 0
	for ; t+4 <= len(att); t += 4 {
		a0, a1, a2, a3 := att[t], att[t+1], att[t+2], att[t+3]
		v0 := v[t*stride:][:n]
		v1 := v[(t+1)*stride:][:n]
		v2 := v[(t+2)*stride:][:n]
		v3 := v[(t+3)*stride:][:n]
		for i, x := range xb {
			x += float32(a0 * v0[i])
			x += float32(a1 * v1[i])
			x += float32(a2 * v2[i])
			x += float32(a3 * v3[i])
			xb[i] = x
		}
	}
	for ; t < len(att); t++ {
		a := att[t]
		v0 := v[t*stride:][:n]
		for i := range xb {
			xb[i] += float32(a * v0[i])
		}
	}
}

func (s *Session) runWO(glo, ghi int) {
	w := &s.m.w.layers[s.cur]
	lo, hi := rows(glo, ghi, s.cfg.Dim)
	w.wo.mulRows(s.xb2, &s.in, lo, hi)
}

// runFFN1 computes w1·x and w3·x for some hidden rows and applies SwiGLU
// to the same rows.
func (s *Session) runFFN1(glo, ghi int) {
	w := &s.m.w.layers[s.cur]
	lo, hi := rows(glo, ghi, s.cfg.HiddenDim)
	w.w1.mulRows(s.hb, &s.in, lo, hi)
	w.w3.mulRows(s.hb2, &s.in, lo, hi)
	swiglu(s.hb[lo:hi], s.hb2[lo:hi])
}

func (s *Session) runFFN2(glo, ghi int) {
	w := &s.m.w.layers[s.cur]
	lo, hi := rows(glo, ghi, s.cfg.Dim)
	w.w2.mulRows(s.xb, &s.in, lo, hi)
}

func (s *Session) runClassify(glo, ghi int) {
	lo, hi := rows(glo, ghi, s.cfg.VocabSize)
	s.m.w.cls.mulRows(s.logits, &s.in, lo, hi)
}
