package lm

import "math"

// The forward and backward passes of one sequence, single-threaded. Every
// sum runs sequentially in index order and every product is rounded to
// float32 before it is added (the explicit float32 conversions forbid a
// fused multiply-add), so a pass gives the same bits on every machine.

// acts are a sequence's saved activations and the backward pass's
// scratch, sized for up to maxT positions.
type acts struct {
	s    shape
	maxT int
	// per layer
	xIn, xb1, q, k, v, att, ao, xMid, xb2, h1, h3, hh [][]float32
	rstd1, rstd2                                      [][]float32
	// after the last layer
	xOut, rstdF, xbF, probs []float32
	// backward scratch
	dx, dxb, dq, dk, dv, dao, dhh, dh1, dh3, datt []float32
}

func newActs(s shape, maxT int) *acts {
	a := &acts{s: s, maxT: maxT}
	d, f, kv := maxT*s.dim, maxT*s.hidden, maxT*s.kvDim
	per := func(n int) [][]float32 {
		out := make([][]float32, s.layers)
		for i := range out {
			out[i] = make([]float32, n)
		}
		return out
	}
	a.xIn, a.xb1, a.q, a.ao, a.xMid, a.xb2 = per(d), per(d), per(d), per(d), per(d), per(d)
	a.k, a.v = per(kv), per(kv)
	a.att = per(s.heads * maxT * maxT)
	a.h1, a.h3, a.hh = per(f), per(f), per(f)
	a.rstd1, a.rstd2 = per(maxT), per(maxT)
	a.xOut, a.xbF, a.rstdF = make([]float32, d), make([]float32, d), make([]float32, maxT)
	a.probs = make([]float32, maxT*s.vocab)
	a.dx, a.dxb, a.dq, a.dao = make([]float32, d), make([]float32, d), make([]float32, d), make([]float32, d)
	a.dk, a.dv = make([]float32, kv), make([]float32, kv)
	a.dhh, a.dh1, a.dh3 = make([]float32, f), make([]float32, f), make([]float32, f)
	a.datt = make([]float32, maxT)
	return a
}

// rope holds the rotary tables of positions 0..maxT-1: cos and sin of
// pos·freq_k, computed as the engine computes them.
type ropeTab struct{ cos, sin []float32 } // maxT × headSize/2

func newRope(s shape, maxT int) ropeTab {
	half := s.headSize / 2
	r := ropeTab{cos: make([]float32, maxT*half), sin: make([]float32, maxT*half)}
	for k := range half {
		exp := float32(2*k) / float32(s.headSize)
		f := 1 / float32(math.Pow(float64(s.theta), float64(exp)))
		for pos := range maxT {
			val := float32(pos) * f
			r.cos[pos*half+k] = float32(math.Cos(float64(val)))
			r.sin[pos*half+k] = float32(math.Sin(float64(val)))
		}
	}
	return r
}

// forward runs tokens through the model with parameters p, saving the
// activations in a, and returns the summed cross-entropy of predicting
// targets (float64, for reporting; the gradient does not use it). The
// probabilities are left in a.probs.
func forward(p []float32, l layout, a *acts, rt ropeTab, tokens, targets []int) float64 {
	s := a.s
	T, D := len(tokens), s.dim
	x := a.xIn[0]
	for t, tok := range tokens {
		copy(x[t*D:(t+1)*D], p[l.emb+tok*D:l.emb+(tok+1)*D])
	}
	for li := range s.layers {
		o := l.layer[li]
		xIn := a.xIn[li]
		rmsnormFwd(a.xb1[li], a.rstd1[li], xIn, p[o.attnNorm:o.attnNorm+D], T, D, s.eps)
		matmulFwd(a.q[li], a.xb1[li], p[o.wq:], T, D, D)
		matmulFwd(a.k[li], a.xb1[li], p[o.wk:], T, s.kvDim, D)
		matmulFwd(a.v[li], a.xb1[li], p[o.wv:], T, s.kvDim, D)
		ropeFwd(a.q[li], rt, T, D, s.headSize)
		ropeFwd(a.k[li], rt, T, s.kvDim, s.headSize)
		attnFwd(a, li, T)
		xMid := a.xMid[li]
		matmulFwd(xMid, a.ao[li], p[o.wo:], T, D, D)
		for i := range T * D {
			xMid[i] += xIn[i]
		}
		rmsnormFwd(a.xb2[li], a.rstd2[li], xMid, p[o.ffnNorm:o.ffnNorm+D], T, D, s.eps)
		F := s.hidden
		matmulFwd(a.h1[li], a.xb2[li], p[o.w1:], T, F, D)
		matmulFwd(a.h3[li], a.xb2[li], p[o.w3:], T, F, D)
		h1, h3, hh := a.h1[li], a.h3[li], a.hh[li]
		for i := range T * F {
			v := h1[i]
			v *= 1 / (1 + expf(-v))
			hh[i] = v * h3[i]
		}
		out := a.xOut
		if li+1 < s.layers {
			out = a.xIn[li+1]
		}
		matmulFwd(out, hh, p[o.w2:], T, D, F)
		for i := range T * D {
			out[i] += xMid[i]
		}
	}
	rmsnormFwd(a.xbF, a.rstdF, a.xOut, p[l.finalNorm:l.finalNorm+D], T, D, s.eps)
	V := s.vocab
	matmulFwd(a.probs, a.xbF, p[l.cls:], T, V, D)
	var loss float64
	for t := range T {
		row := a.probs[t*V : (t+1)*V]
		softmax(row)
		loss -= math.Log(math.Max(float64(row[targets[t]]), 1e-30))
	}
	return loss
}

// backward adds to g the gradient of scale × the summed cross-entropy of
// the last forward pass (which left its activations in a).
func backward(p, g []float32, l layout, a *acts, rt ropeTab, tokens, targets []int, scale float32) {
	s := a.s
	T, D, V, F := len(tokens), s.dim, s.vocab, s.hidden
	dx := a.dx[:T*D]
	dxb := a.dxb[:T*D]
	// classifier: dlogits = (probs - onehot) · scale, in place of the
	// probabilities (forward is not needed again)
	dlog := a.probs[:T*V]
	for t := range T {
		dl := dlog[t*V : (t+1)*V]
		dl[targets[t]] -= 1
		for i := range dl {
			dl[i] *= scale
		}
	}
	clear(dxb)
	matmulBwd(dxb, g[l.cls:], dlog, a.xbF, p[l.cls:], T, V, D)
	clear(dx)
	rmsnormBwd(dx, g[l.finalNorm:l.finalNorm+D], dxb, a.xOut, p[l.finalNorm:l.finalNorm+D], a.rstdF, T, D)
	for li := s.layers - 1; li >= 0; li-- {
		o := l.layer[li]
		// feed-forward: out = xMid + w2 · (silu(w1 xb2) ⊙ w3 xb2)
		dhh := a.dhh[:T*F]
		clear(dhh)
		matmulBwd(dhh, g[o.w2:], dx, a.hh[li], p[o.w2:], T, D, F)
		h1, h3 := a.h1[li], a.h3[li]
		dh1, dh3 := a.dh1[:T*F], a.dh3[:T*F]
		for i := range T * F {
			x := h1[i]
			sg := 1 / (1 + expf(-x))
			silu := x * sg
			dh3[i] = dhh[i] * silu
			dh1[i] = dhh[i] * h3[i] * (sg * (1 + float32(x*(1-sg))))
		}
		clear(dxb)
		matmulBwd(dxb, g[o.w1:], dh1, a.xb2[li], p[o.w1:], T, F, D)
		matmulBwd(dxb, g[o.w3:], dh3, a.xb2[li], p[o.w3:], T, F, D)
		// dx now holds d(xMid) from the residual; add the norm's share
		rmsnormBwd(dx, g[o.ffnNorm:o.ffnNorm+D], dxb, a.xMid[li], p[o.ffnNorm:o.ffnNorm+D], a.rstd2[li], T, D)
		// attention: xMid = xIn + wo · ao
		dao := a.dao[:T*D]
		clear(dao)
		matmulBwd(dao, g[o.wo:], dx, a.ao[li], p[o.wo:], T, D, D)
		dq, dk, dv := a.dq[:T*D], a.dk[:T*s.kvDim], a.dv[:T*s.kvDim]
		clear(dq)
		clear(dk)
		clear(dv)
		attnBwd(a, li, T, dq, dk, dv, dao)
		ropeBwd(dq, rt, T, D, s.headSize)
		ropeBwd(dk, rt, T, s.kvDim, s.headSize)
		clear(dxb)
		matmulBwd(dxb, g[o.wq:], dq, a.xb1[li], p[o.wq:], T, D, D)
		matmulBwd(dxb, g[o.wk:], dk, a.xb1[li], p[o.wk:], T, s.kvDim, D)
		matmulBwd(dxb, g[o.wv:], dv, a.xb1[li], p[o.wv:], T, s.kvDim, D)
		rmsnormBwd(dx, g[o.attnNorm:o.attnNorm+D], dxb, a.xIn[li], p[o.attnNorm:o.attnNorm+D], a.rstd1[li], T, D)
	}
	for t, tok := range tokens {
		ge := g[l.emb+tok*D : l.emb+(tok+1)*D]
		for j, v := range dx[t*D : (t+1)*D] {
			ge[j] += v
		}
	}
}

// matmulFwd sets out[t][r] = Σ_j W[r][j]·in[t][j] for T rows of in
// (width C) and R rows of W.
func matmulFwd(out, in, w []float32, T, R, C int) {
	for t := range T {
		x := in[t*C : (t+1)*C]
		o := out[t*R : (t+1)*R]
		r := 0
		for ; r+4 <= R; r += 4 {
			w0 := w[r*C : (r+1)*C]
			w1 := w[(r+1)*C : (r+2)*C]
			w2 := w[(r+2)*C : (r+3)*C]
			w3 := w[(r+3)*C : (r+4)*C]
			var s0, s1, s2, s3 float32
			for j, xv := range x {
				s0 += float32(w0[j] * xv)
				s1 += float32(w1[j] * xv)
				s2 += float32(w2[j] * xv)
				s3 += float32(w3[j] * xv)
			}
			o[r], o[r+1], o[r+2], o[r+3] = s0, s1, s2, s3
		}
		for ; r < R; r++ {
			row := w[r*C : (r+1)*C]
			var s float32
			for j, xv := range x {
				s += float32(row[j] * xv)
			}
			o[r] = s
		}
	}
}

// matmulBwd is the backward pass of matmulFwd: din[t][j] += Σ_r
// dout[t][r]·W[r][j] (added in r order) and dW[r][j] += Σ_t
// dout[t][r]·in[t][j] (added in t order). Four rows (positions) are
// taken per pass over a row of din (dW), which keeps the order of the
// additions — each still rounds in turn — and reads and writes the row a
// quarter as often.
func matmulBwd(din, dw, dout, in, w []float32, T, R, C int) {
	for t := range T {
		dxt := din[t*C : (t+1)*C]
		d := dout[t*R : (t+1)*R]
		r := 0
		for ; r+4 <= R; r += 4 {
			d0, d1, d2, d3 := d[r], d[r+1], d[r+2], d[r+3]
			w0 := w[r*C : (r+1)*C][:len(dxt)]
			w1 := w[(r+1)*C : (r+2)*C][:len(dxt)]
			w2 := w[(r+2)*C : (r+3)*C][:len(dxt)]
			w3 := w[(r+3)*C : (r+4)*C][:len(dxt)]
			for j, v := range dxt {
				v += float32(d0 * w0[j])
				v += float32(d1 * w1[j])
				v += float32(d2 * w2[j])
				v += float32(d3 * w3[j])
				dxt[j] = v
			}
		}
		for ; r < R; r++ {
			row := w[r*C : (r+1)*C][:len(dxt)]
			for j := range dxt {
				dxt[j] += float32(d[r] * row[j])
			}
		}
	}
	for r := range R {
		gw := dw[r*C : (r+1)*C]
		t := 0
		for ; t+4 <= T; t += 4 {
			d0, d1, d2, d3 := dout[t*R+r], dout[(t+1)*R+r], dout[(t+2)*R+r], dout[(t+3)*R+r]
			x0 := in[t*C : (t+1)*C][:len(gw)]
			x1 := in[(t+1)*C : (t+2)*C][:len(gw)]
			x2 := in[(t+2)*C : (t+3)*C][:len(gw)]
			x3 := in[(t+3)*C : (t+4)*C][:len(gw)]
			for j, v := range gw {
				v += float32(d0 * x0[j])
				v += float32(d1 * x1[j])
				v += float32(d2 * x2[j])
				v += float32(d3 * x3[j])
				gw[j] = v
			}
		}
		for ; t < T; t++ {
			d := dout[t*R+r]
			x := in[t*C : (t+1)*C][:len(gw)]
			for j := range gw {
				gw[j] += float32(d * x[j])
			}
		}
	}
}

// rmsnormFwd sets out = w ⊙ (x · rstd) per row and saves rstd, as the
// engine's rmsnorm computes it.
func rmsnormFwd(out, rstd, x, w []float32, T, D int, eps float32) {
	for t := range T {
		xr := x[t*D : (t+1)*D]
		var ss float32
		for _, v := range xr {
			ss += float32(v * v)
		}
		ss /= float32(D)
		ss += eps
		r := 1 / float32(math.Sqrt(float64(ss)))
		rstd[t] = r
		o := out[t*D : (t+1)*D]
		for j := range o {
			o[j] = w[j] * float32(r*xr[j])
		}
	}
}

// rmsnormBwd adds to dx the gradient through y = w ⊙ x·r, r = (mean(x²) +
// eps)^-½, given dy: dx_j += r·w_j·dy_j − r³/D · x_j · Σ_k dy_k·w_k·x_k;
// and to dw: dw_j += dy_j · x_j · r.
func rmsnormBwd(dx, dw, dy, x, w, rstd []float32, T, D int) {
	for t := range T {
		xr := x[t*D : (t+1)*D]
		dyr := dy[t*D : (t+1)*D]
		r := rstd[t]
		var dot float32
		for j, d := range dyr {
			dot += float32(float32(d*w[j]) * xr[j])
		}
		c := float32(float32(r*r)*r) * dot / float32(D)
		dxr := dx[t*D : (t+1)*D]
		for j, d := range dyr {
			dxr[j] += float32(r*float32(w[j]*d)) - float32(c*xr[j])
			dw[j] += float32(d * float32(xr[j]*r))
		}
	}
}

// ropeFwd rotates the pairs (2k, 2k+1) of each head of every position
// by the position's angles (the engine's interleaved layout).
func ropeFwd(v []float32, rt ropeTab, T, width, hs int) {
	half := hs / 2
	for t := range T {
		c, s := rt.cos[t*half:(t+1)*half], rt.sin[t*half:(t+1)*half]
		row := v[t*width : (t+1)*width]
		for h := 0; h+hs <= width; h += hs {
			head := row[h : h+hs]
			for k := range half {
				v0, v1 := head[2*k], head[2*k+1]
				head[2*k] = float32(v0*c[k]) - float32(v1*s[k])
				head[2*k+1] = float32(v0*s[k]) + float32(v1*c[k])
			}
		}
	}
}

// ropeBwd rotates the gradient back (the rotation's transpose).
func ropeBwd(d []float32, rt ropeTab, T, width, hs int) {
	half := hs / 2
	for t := range T {
		c, s := rt.cos[t*half:(t+1)*half], rt.sin[t*half:(t+1)*half]
		row := d[t*width : (t+1)*width]
		for h := 0; h+hs <= width; h += hs {
			head := row[h : h+hs]
			for k := range half {
				d0, d1 := head[2*k], head[2*k+1]
				head[2*k] = float32(d0*c[k]) + float32(d1*s[k])
				head[2*k+1] = float32(d1*c[k]) - float32(d0*s[k])
			}
		}
	}
}

// attnFwd is causal multi-head attention with grouped keys and values:
// ao[t,h] = Σ_{u≤t} softmax_u(q[t,h]·k[u,g]/√hs) · v[u,g], g the head's
// key/value group. The probabilities are saved in a.att[li] (head-major,
// T×T per head, the upper triangle unused).
func attnFwd(a *acts, li, T int) {
	s := a.s
	hs, D, kv := s.headSize, s.dim, s.kvDim
	group := s.heads / s.kvHeads
	scale := float32(math.Sqrt(float64(hs)))
	q, k, v, ao := a.q[li], a.k[li], a.v[li], a.ao[li]
	for h := range s.heads {
		g := h / group
		for t := range T {
			qv := q[t*D+h*hs : t*D+(h+1)*hs]
			att := a.att[li][(h*T+t)*T : (h*T+t)*T+t+1]
			for u := range t + 1 {
				kr := k[u*kv+g*hs : u*kv+(g+1)*hs]
				var sc float32
				for i, x := range qv {
					sc += float32(x * kr[i])
				}
				att[u] = sc / scale
			}
			softmax(att)
			out := ao[t*D+h*hs : t*D+(h+1)*hs]
			clear(out)
			for u, pr := range att {
				vr := v[u*kv+g*hs : u*kv+(g+1)*hs]
				for i := range out {
					out[i] += float32(pr * vr[i])
				}
			}
		}
	}
}

// attnBwd adds to dq, dk, dv the gradient through attnFwd given dao.
func attnBwd(a *acts, li, T int, dq, dk, dv, dao []float32) {
	s := a.s
	hs, D, kv := s.headSize, s.dim, s.kvDim
	group := s.heads / s.kvHeads
	scale := float32(math.Sqrt(float64(hs)))
	q, k, v := a.q[li], a.k[li], a.v[li]
	for h := range s.heads {
		g := h / group
		for t := range T {
			att := a.att[li][(h*T+t)*T : (h*T+t)*T+t+1]
			do := dao[t*D+h*hs : t*D+(h+1)*hs]
			datt := a.datt[:t+1]
			var dot float32
			for u, pr := range att {
				vr := v[u*kv+g*hs : u*kv+(g+1)*hs]
				dvr := dv[u*kv+g*hs : u*kv+(g+1)*hs]
				var d float32
				for i, x := range do {
					d += float32(x * vr[i])
					dvr[i] += float32(pr * x)
				}
				datt[u] = d
				dot += float32(pr * d)
			}
			qv := q[t*D+h*hs : t*D+(h+1)*hs]
			dqv := dq[t*D+h*hs : t*D+(h+1)*hs]
			for u, pr := range att {
				ds := float32(pr*(datt[u]-dot)) / scale
				if ds == 0 {
					continue
				}
				kr := k[u*kv+g*hs : u*kv+(g+1)*hs]
				dkr := dk[u*kv+g*hs : u*kv+(g+1)*hs]
				for i := range qv {
					dqv[i] += float32(ds * kr[i])
					dkr[i] += float32(ds * qv[i])
				}
			}
		}
	}
}

// softmax normalises x in place.
func softmax(x []float32) {
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	var sum float32
	for i, v := range x {
		e := expf(v - m)
		x[i] = e
		sum += e
	}
	for i := range x {
		x[i] /= sum
	}
}

// expf is e**x rounded to float32, computed in Go alone (see exp).
func expf(x float32) float32 {
	if x > 80 {
		return float32(math.Inf(1))
	}
	return float32(exp(float64(x)))
}

// exp is e**x, computed in Go alone: math.Exp has assembly versions on
// some architectures whose last bit may differ. The algorithm is the one
// of Go's portable math.Exp (FreeBSD's e_exp.c), as package train's.
func exp(x float64) float64 {
	const (
		ln2Hi     = 6.93147180369123816490e-01
		ln2Lo     = 1.90821492927058770002e-10
		log2e     = 1.44269504088896338700e+00
		underflow = -7.45133219101941108420e+02
		nearZero  = 1.0 / (1 << 28)
		p1        = 1.66666666666666657415e-01
		p2        = -2.77777777770155933842e-03
		p3        = 6.61375632143793436117e-05
		p4        = -1.65339022054652515390e-06
		p5        = 4.13813679705723846039e-08
	)
	switch {
	case math.IsNaN(x):
		return x
	case x < underflow:
		return 0
	case -nearZero < x && x < nearZero:
		return 1 + x
	}
	k := int(float64(log2e*x) - 0.5)
	if x > 0 {
		k = int(float64(log2e*x) + 0.5)
	}
	hi := x - float64(float64(k)*ln2Hi)
	lo := float64(float64(k) * ln2Lo)
	r := hi - lo
	t := float64(r * r)
	poly := p1 + float64(t*(p2+float64(t*(p3+float64(t*(p4+float64(t*p5)))))))
	c := r - float64(t*poly)
	y := 1 - ((lo - float64(r*c)/(2-c)) - hi)
	return math.Ldexp(y, k)
}
