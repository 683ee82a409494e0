package gguf

// Integer dot products of a quantised row with 8-bit activations, as
// llama.cpp's ggml_vec_dot_<type>_<vec_dot_type>: the quants are multiplied
// with the activation quants and summed in integers; the float scales are
// applied once per block (legacy types) or super-block (K-quants). Q4_K and
// Q6_K (the types of a Q4_K_M file) and Q8_0 have AVX2 kernels
// (dotq_amd64.s) and pure-Go twins that compute the same values bit for bit
// (the same integers, then the same float32 steps); the other types go
// through the block decoder. Each function's result differs from
// llama.cpp's only by the order of float32 additions.

// DotQ8K returns the dot product of row, K-quant blocks of type t (Q2_K to
// Q6_K), with a, the Q8_K activations of a vector of the row's length.
func DotQ8K(t TensorType, row []byte, a *Q8K) float32 {
	switch t {
	case Q4_K:
		return dotQ4KQ8K(row, a)
	case Q6_K:
		return dotQ6KQ8K(row, a)
	}
	return dotGenericQ8K(t, row, a)
}

// DotQ8Kx4 sets out[t] = DotQ8K(t, row, a[t]) for four activation vectors
// (four tokens of a prompt), bit for bit; for Q4_K and Q6_K with AVX2 it
// decodes the row once for the four.
func DotQ8Kx4(typ TensorType, row []byte, a *[4]*Q8K, out *[4]float32) {
	switch {
	case typ == Q4_K && dotQ4KQ8Kx4(row, a, out):
		return
	case typ == Q6_K && dotQ6KQ8Kx4(row, a, out):
		return
	}
	for t, v := range a {
		out[t] = DotQ8K(typ, row, v)
	}
}

// Q8Kx4 is four activation vectors (four tokens of a prompt) prepared
// once for the DotQ8K2x4 calls of every row pair of a matrix: the
// pointers the assembly reads are taken, and bounds-checked, once.
type Q8Kx4 struct {
	a [4]*Q8K
	n int // super-blocks per row
	p q8kx4
}

// Set prepares a for rows of cols values (a multiple of QK that each
// vector covers).
func (x *Q8Kx4) Set(a *[4]*Q8K, cols int) {
	x.a, x.n = *a, cols/QK
	if hasAVX2 && x.n > 0 {
		for t, v := range a {
			q8, bs, d := v.Qs[:QK*x.n], v.Bsums[:16*x.n], v.D[:x.n] // bounds for the assembly
			x.p.q8[t], x.p.bs[t], x.p.d[t] = &q8[0], &bs[0], &d[0]
		}
	}
}

// DotQ8K2x4 sets out[4r+t] = DotQ8K(typ, rows r, a's vector t) for two
// rows (row0, row1, each of the length a was set for) and four activation
// vectors, bit for bit; for Q4_K and Q6_K with AVX2 it keeps the eight
// sums in registers and loads each activation block once for the two rows
// (q4kDot2x4AVX2, q6kDot2x4AVX2). Other types take DotQ8Kx4 per row.
func DotQ8K2x4(typ TensorType, row0, row1 []byte, a *Q8Kx4, out *[8]float32) {
	switch {
	case typ == Q4_K && dotQ4KQ8K2x4(row0, row1, a, out):
		return
	case typ == Q6_K && dotQ6KQ8K2x4(row0, row1, a, out):
		return
	}
	var o [4]float32
	DotQ8Kx4(typ, row0, &a.a, &o)
	copy(out[:4], o[:])
	DotQ8Kx4(typ, row1, &a.a, &o)
	copy(out[4:], o[:])
}

// DotQ8 returns the dot product of row, blocks of a 32-value type t (Q4_0,
// Q4_1, Q5_0, Q5_1, Q8_0), with a, the Q8_0/Q8_1 activations of a vector
// of the row's length.
func DotQ8(t TensorType, row []byte, a *Q8Blocks) float32 {
	const bs = Q8_0BlockSize
	tb := t.BlockBytes()
	var q [QK]int8
	var fa, fb [maxSub]float32
	var sum float32
	for i := range len(row) / tb {
		decode(t, row[i*tb:(i+1)*tb], &q, &fa, &fb)
		xq := a.Qs[i*bs : (i+1)*bs]
		var isum int32
		for j, v := range q[:bs] {
			isum += int32(v) * int32(xq[j])
		}
		// llama.cpp: sumi·(d_x·d_y) (+ m_x·s_y for the types with a minimum).
		sum += float32(isum) * float32(fa[0]*a.D[i])
		if codecs[t].hasMin {
			sum += float32(fb[0] * a.S[i])
		}
	}
	return sum
}

// DotQ8Unpacked is the Q8_0 dot product of a row unpacked into int8 quants
// w (len(a.Qs)) and float32 block scales wd, with Q8_0 activations a, in
// ggml's AVX2 order (dotQ80Go).
func DotQ8Unpacked(w []int8, wd []float32, a *Q8Blocks) float32 {
	return dotQ80(w, wd, a)
}

// DotQ8Unpackedx4 sets out[t] = DotQ8Unpacked(w, wd, a[t]) for four
// activation vectors (four tokens of a prompt), bit for bit, reading the
// row once for the four.
func DotQ8Unpackedx4(w []int8, wd []float32, a *[4]*Q8Blocks, out *[4]float32) {
	dotQ80x4(w, wd, a, out)
}

// Q8Blocksx4 is four Q8_0 activation vectors prepared once for the
// DotQ8Unpacked2x4 calls of every row pair of a matrix.
type Q8Blocksx4 struct {
	a  [4]*Q8Blocks
	nb int // blocks per row
	p  q80x4
}

// Set prepares a for rows of cols values (a multiple of Q8_0BlockSize
// that each vector covers).
func (x *Q8Blocksx4) Set(a *[4]*Q8Blocks, cols int) {
	x.a, x.nb = *a, cols/Q8_0BlockSize
	if hasAVX2 && x.nb > 0 {
		for t, v := range a {
			q, d := v.Qs[:32*x.nb], v.D[:x.nb] // bounds for the assembly
			x.p.x[t], x.p.d[t] = &q[0], &d[0]
		}
	}
}

// DotQ8Unpacked2x4 sets out[4r+t] = DotQ8Unpacked(w_r, wd_r, a's vector
// t) for two rows of the length a was set for and four activation
// vectors, bit for bit, loading each activation block once for the two
// rows.
func DotQ8Unpacked2x4(w0, w1 []int8, wd0, wd1 []float32, a *Q8Blocksx4, out *[8]float32) {
	if dotQ80x2x4(w0, w1, wd0, wd1, a, out) {
		return
	}
	var o [4]float32
	dotQ80x4(w0, wd0, &a.a, &o)
	copy(out[:4], o[:])
	dotQ80x4(w1, wd1, &a.a, &o)
	copy(out[4:], o[:])
}

// dotQ80Go is ggml_vec_dot_q8_0_q8_0's AVX2 arithmetic: per block, eight
// lanes of four integer products each, converted to float32, times
// d_w·d_x, added into eight float32 lane sums; then the lanes are summed
// once (q80HorizontalGo). The assembly does the same steps in the same
// order, so the results agree bit for bit; float32(…) around each product
// forbids fusing it with the addition.
func dotQ80Go(w []int8, wd []float32, a *Q8Blocks) float32 {
	var lanes [8]float32
	for b, d := range wd {
		ds := float32(d * a.D[b])
		wb, xb := w[32*b:32*b+32], a.Qs[32*b:32*b+32]
		for l := range lanes {
			var s int32
			for j := 4 * l; j < 4*l+4; j++ {
				s += int32(wb[j]) * int32(xb[j])
			}
			lanes[l] += float32(float32(s) * ds)
		}
	}
	return q80HorizontalGo(&lanes)
}

// q80HorizontalGo sums eight lanes as the assembly does: halves added
// lane-wise, then pairs, then the last two.
func q80HorizontalGo(l *[8]float32) float32 {
	h0, h1, h2, h3 := l[0]+l[4], l[1]+l[5], l[2]+l[6], l[3]+l[7]
	return float32(h0+h2) + float32(h1+h3)
}

// dotQ4KQ8KGo is llama.cpp's ggml_vec_dot_q4_K_q8_K: per super-block,
// d·d_y·Σ_j sc_j·Σ q·q_y - dmin·d_y·Σ_j m_j·(sum of q_y over sub-block j).
// The AVX2 kernel computes the same float32 operations in the same order.
func dotQ4KQ8KGo(row []byte, a *Q8K) float32 {
	var sums [2]int32
	var sum float32
	for i := range len(row) / 144 {
		blk := row[i*144 : (i+1)*144]
		q4kSumsGo(sums[:], blk, a.Qs[i*QK:(i+1)*QK], a.Bsums[i*16:(i+1)*16])
		dy := a.D[i]
		// float32(…) around each product forbids fusing it with the
		// addition (GOAMD64=v3 would): the assembly rounds every step.
		sum += float32(float32(f16(blk)*dy) * float32(sums[0]))
		sum -= float32(float32(f16(blk[2:])*dy) * float32(sums[1]))
	}
	return sum
}

// dotQ6KQ8KGo is llama.cpp's ggml_vec_dot_q6_K_q8_K: per super-block
// d·d_y·Σ_s sc_s·Σ (q-32)·q_y.
func dotQ6KQ8KGo(row []byte, a *Q8K) float32 {
	var sums [1]int32
	var sum float32
	for i := range len(row) / 210 {
		blk := row[i*210 : (i+1)*210]
		q6kSumsGo(sums[:], blk, a.Qs[i*QK:(i+1)*QK], a.Bsums[i*16:(i+1)*16])
		sum += float32(float32(f16(blk[208:])*a.D[i]) * float32(sums[0]))
	}
	return sum
}

// q4kSumsGo sets out[2i] and out[2i+1] to super-block i's Σ_j sc_j·Σ q·q_y
// and Σ_j m_j·(q_y sum of sub-block j); len(out) = 2n for n blocks in row.
func q4kSumsGo(out []int32, row []byte, q8 []int8, bsums []int16) {
	var sc [8]int16
	for i := range len(out) / 2 {
		blk := row[i*144 : (i+1)*144]
		bs := bsums[i*16 : i*16+16]
		var mins int32
		for j := range 8 {
			s, m := scaleMinK4(j, blk[4:16])
			sc[j] = int16(s)
			mins += int32(m) * (int32(bs[2*j]) + int32(bs[2*j+1]))
		}
		out[2*i] = q4kBlockGo(blk[16:144], q8[i*QK:(i+1)*QK], &sc)
		out[2*i+1] = mins
	}
}

// q6kSumsGo sets out[i] to super-block i's Σ_s sc_s·Σ (q-32)·q_y: the
// unsigned quants' sum, less 32·Σ_s sc_s·(q_y sum of sub-block s).
func q6kSumsGo(out []int32, row []byte, q8 []int8, bsums []int16) {
	var sc [16]int16
	for i := range out {
		blk := row[i*210 : (i+1)*210]
		bs := bsums[i*16 : i*16+16]
		var off int32
		for s, v := range blk[192:208] {
			sc[s] = int16(int8(v))
			off += int32(sc[s]) * int32(bs[s])
		}
		out[i] = q6kBlockGo(blk[0:128], blk[128:192], q8[i*QK:(i+1)*QK], &sc) - 32*off
	}
}

// dotGenericQ8K is DotQ8K through the block decoder (Q2_K, Q3_K, Q5_K): per
// sub-block s, a_s·Σ q·q_y + b_s·Σ q_y, times d_y.
func dotGenericQ8K(t TensorType, row []byte, a *Q8K) float32 {
	c := codecs[t]
	tb := t.BlockBytes()
	var q [QK]int8
	var fa, fb [maxSub]float32
	var sum float32
	for i := range len(row) / tb {
		decode(t, row[i*tb:(i+1)*tb], &q, &fa, &fb)
		xq := a.Qs[i*QK : (i+1)*QK]
		bs := a.Bsums[i*16 : i*16+16]
		var bsum float32
		for s := range QK / c.sub {
			var isum int32
			for j := s * c.sub; j < (s+1)*c.sub; j++ {
				isum += int32(q[j]) * int32(xq[j])
			}
			bsum += float32(fa[s] * float32(isum))
			if c.hasMin {
				var ys int32
				for k := s * c.sub / 16; k < (s+1)*c.sub/16; k++ {
					ys += int32(bs[k])
				}
				bsum += float32(fb[s] * float32(ys))
			}
		}
		sum += float32(bsum * a.D[i])
	}
	return sum
}

// q4kBlockGo is the integer core of a Q4_K super-block: Σ_j sc_j·Σ q·q_y
// over its eight 32-value sub-blocks (qs: 128 bytes, q8: 256 quants).
func q4kBlockGo(qs []byte, q8 []int8, sc *[8]int16) int32 {
	qs, q8 = qs[:128], q8[:256]
	var sum int32
	for j := range 4 {
		src := qs[32*j : 32*j+32]
		lo, hi := q8[64*j:64*j+32], q8[64*j+32:64*j+64]
		var tl, th int32
		for l, v := range src {
			tl += int32(v&0xf) * int32(lo[l])
			th += int32(v>>4) * int32(hi[l])
		}
		sum += int32(sc[2*j])*tl + int32(sc[2*j+1])*th
	}
	return sum
}

// q6kBlockGo is the integer core of a Q6_K super-block with the quants
// unsigned (0..63): Σ_s sc_s·Σ q·q_y over its sixteen 16-value sub-blocks.
func q6kBlockGo(ql, qh []byte, q8 []int8, sc *[16]int16) int32 {
	ql, qh, q8 = ql[:128], qh[:64], q8[:256]
	var sum int32
	for n := 0; n < QK; n += 128 {
		l4, h, y := ql[n/2:n/2+64], qh[n/4:n/4+32], q8[n:n+128]
		// Value n+32k+l is in sub-block n/16 + 2k + l/16; each half of l
		// gets its own four sums (locals, so they stay in registers).
		for half := range 2 {
			var t0, t1, t2, t3 int32
			for l := 16 * half; l < 16*half+16; l++ {
				a, b, hb := l4[l], l4[l+32], h[l]
				t0 += int32(a&0xf|(hb&3)<<4) * int32(y[l])
				t1 += int32(b&0xf|(hb>>2&3)<<4) * int32(y[l+32])
				t2 += int32(a>>4|(hb>>4&3)<<4) * int32(y[l+64])
				t3 += int32(b>>4|(hb>>6&3)<<4) * int32(y[l+96])
			}
			s := sc[n/16+half:]
			sum += int32(s[0])*t0 + int32(s[2])*t1 + int32(s[4])*t2 + int32(s[6])*t3
		}
	}
	return sum
}
