package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Quantisers, for writing test models and `aitbc model export`. Q4_0,
// Q4_1, Q5_0, Q5_1 and Q8_0 are llama.cpp's reference quantize_row_*_ref;
// Q2_K, Q4_K and Q5_K follow quantize_row_*_K_ref (make_qkx2_quants'
// weighted search for each sub-block's scale and min, then 6- or 4-bit
// scales and a final pass with the quantised scales) and Q6_K
// quantize_row_q6_K_ref (make_qx_quants), Q3_K quantize_row_q3_K_ref
// (make_q3_quants). Without an importance matrix llama-quantize uses these
// same reference functions, and TestMatchesLlamaQuantize checks that this
// package's output is byte-identical to its output.

// Quantize encodes src into dst as t's blocks; len(src) must be a whole
// number of blocks and dst exactly their size.
func Quantize(t TensorType, dst []byte, src []float32) error {
	if !t.Computable() {
		return fmt.Errorf("%w: cannot encode %s", ErrWrite, t)
	}
	nb, err := checkSizes(t, len(src), len(dst), ErrWrite)
	if err != nil {
		return err
	}
	switch t {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
		return nil
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float16Bits(v))
		}
		return nil
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], BFloat16Bits(v))
		}
		return nil
	case Q8_0:
		return QuantizeQ8_0(dst, src)
	}
	enc := map[TensorType]func([]byte, []float32){
		Q4_0: quantQ4_0, Q4_1: quantQ4_1, Q5_0: quantQ5_0, Q5_1: quantQ5_1,
		Q2_K: quantQ2_K, Q3_K: quantQ3_K, Q4_K: quantQ4_K, Q5_K: quantQ5_K, Q6_K: quantQ6_K,
	}[t]
	bs, tb := t.BlockSize(), t.BlockBytes()
	for i := range nb {
		enc(dst[i*tb:(i+1)*tb], src[i*bs:(i+1)*bs])
	}
	return nil
}

// nearestInt rounds half to even, as llama.cpp's nearest_int (which adds
// 1.5·2²³ in float32).
func nearestInt(f float32) int { return int(math.RoundToEven(float64(f))) }

func putF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, Float16Bits(f)) }

func absMaxSigned(x []float32) float32 {
	var amax, m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, m = a, v
		}
	}
	return m
}

func minMax(x []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

func inv(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

func quantQ4_0(out []byte, x []float32) {
	d := absMaxSigned(x) / -8
	id := inv(d)
	putF16(out, d)
	for j := range 16 {
		// (int8)(v + 8.5) truncates toward zero, as the C cast does.
		x0 := min(15, int8(x[j]*id+8.5))
		x1 := min(15, int8(x[j+16]*id+8.5))
		out[2+j] = byte(x0) | byte(x1)<<4
	}
}

func quantQ4_1(out []byte, x []float32) {
	lo, hi := minMax(x)
	d := (hi - lo) / 15
	id := inv(d)
	putF16(out, d)
	putF16(out[2:], lo)
	for j := range 16 {
		x0 := min(15, int8((x[j]-lo)*id+0.5))
		x1 := min(15, int8((x[j+16]-lo)*id+0.5))
		out[4+j] = byte(x0) | byte(x1)<<4
	}
}

func quantQ5_0(out []byte, x []float32) {
	d := absMaxSigned(x) / -16
	id := inv(d)
	putF16(out, d)
	var qh uint32
	for j := range 16 {
		x0 := byte(min(31, int8(x[j]*id+16.5)))
		x1 := byte(min(31, int8(x[j+16]*id+16.5)))
		out[6+j] = x0&0xf | (x1&0xf)<<4
		qh |= uint32(x0>>4&1)<<j | uint32(x1>>4&1)<<(j+16)
	}
	binary.LittleEndian.PutUint32(out[2:], qh)
}

func quantQ5_1(out []byte, x []float32) {
	lo, hi := minMax(x)
	d := (hi - lo) / 31
	id := inv(d)
	putF16(out, d)
	putF16(out[2:], lo)
	var qh uint32
	for j := range 16 {
		x0 := byte((x[j]-lo)*id + 0.5)
		x1 := byte((x[j+16]-lo)*id + 0.5)
		out[8+j] = x0&0xf | (x1&0xf)<<4
		qh |= uint32(x0>>4&1)<<j | uint32(x1>>4&1)<<(j+16)
	}
	binary.LittleEndian.PutUint32(out[4:], qh)
}

// makeQKX2 is llama.cpp's make_qkx2_quants: the scale and (negated) min of
// an affine n-level quantisation of x minimising the weighted error, found
// by trying nstep+1 scales around (max-min)/nmax.
func makeQKX2(nmax int, x, w []float32, L []uint8, rmin, rdelta float32, nstep int, useMAD bool) (scale, theMin float32) {
	n := len(x)
	lo, hi := x[0], x[0]
	sumW := w[0]
	sumX := sumW * x[0]
	for i := 1; i < n; i++ {
		lo, hi = min(lo, x[i]), max(hi, x[i])
		sumW += w[i]
		sumX += w[i] * x[i]
	}
	lo = min(lo, 0)
	if hi == lo {
		clear(L[:n])
		return 0, -lo
	}
	errOf := func(diff float32) float32 {
		if useMAD {
			return float32(math.Abs(float64(diff)))
		}
		return diff * diff
	}
	iscale := float32(nmax) / (hi - lo)
	scale = 1 / iscale
	var best float32
	for i := range n {
		l := max(0, min(nmax, nearestInt(iscale*(x[i]-lo))))
		L[i] = uint8(l)
		best += w[i] * errOf(scale*float32(l)+lo-x[i])
	}
	var aux [32]uint8
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + rdelta*float32(is) + float32(nmax)) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i := range n {
			l := max(0, min(nmax, nearestInt(iscale*(x[i]-lo))))
			aux[i] = uint8(l)
			fl := float32(l)
			sumL += w[i] * fl
			sumL2 += w[i] * fl * fl
			sumXL += w[i] * fl * x[i]
		}
		D := sumW*sumL2 - sumL*sumL
		if D <= 0 {
			continue
		}
		thisScale := (sumW*sumXL - sumX*sumL) / D
		thisMin := (sumL2*sumX - sumL*sumXL) / D
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var cur float32
		for i := range n {
			cur += w[i] * errOf(thisScale*float32(aux[i])+thisMin-x[i])
		}
		if cur < best {
			copy(L[:n], aux[:n])
			best, scale, lo = cur, thisScale, thisMin
		}
	}
	return scale, -lo
}

// packScaleMinK4 is the inverse of scaleMinK4.
func packScaleMinK4(p []byte, ls, lm *[8]uint8) {
	clear(p[:12])
	for j := range 8 {
		if j < 4 {
			p[j] = ls[j]
			p[j+4] = lm[j]
		} else {
			p[j+4] = ls[j]&0xf | (lm[j]&0xf)<<4
			p[j-4] |= (ls[j] >> 4) << 6
			p[j] |= (lm[j] >> 4) << 6
		}
	}
}

// quantAffineK is the body of quantize_row_q4_K_ref and _q5_K_ref: nmax is
// 15 or 31; it returns the 256 levels for packing.
func quantAffineK(hdr []byte, x []float32, nmax int, rmin, rdelta float32, nstep int) [QK]uint8 {
	var L [QK]uint8
	var scales, mins [8]float32
	var w [32]float32
	var maxScale, maxMin float32
	for j := range 8 {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += v * v
		}
		av := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			w[l] = av + float32(math.Abs(float64(v)))
		}
		scales[j], mins[j] = makeQKX2(nmax, xs, w[:], L[32*j:32*j+32], rmin, rdelta, nstep, false)
		maxScale, maxMin = max(maxScale, scales[j]), max(maxMin, mins[j])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	var ls, lm [8]uint8
	for j := range 8 {
		ls[j] = uint8(min(63, nearestInt(invScale*scales[j])))
		lm[j] = uint8(min(63, nearestInt(invMin*mins[j])))
	}
	putF16(hdr, maxScale/63)
	putF16(hdr[2:], maxMin/63)
	packScaleMinK4(hdr[4:16], &ls, &lm)
	d, dmin := f16(hdr), f16(hdr[2:])
	for j := range 8 {
		sc, m := scaleMinK4(j, hdr[4:16])
		dj := d * float32(sc)
		if dj == 0 {
			continue
		}
		dm := dmin * float32(m)
		for i := range 32 {
			L[32*j+i] = uint8(max(0, min(nmax, nearestInt((x[32*j+i]+dm)/dj))))
		}
	}
	return L
}

func quantQ4_K(out []byte, x []float32) {
	L := quantAffineK(out, x, 15, -1, 0.1, 20)
	q := out[16:144]
	for j := 0; j < QK; j += 64 {
		for l := range 32 {
			q[j/2+l] = L[j+l] | L[j+l+32]<<4
		}
	}
}

func quantQ5_K(out []byte, x []float32) {
	L := quantAffineK(out, x, 31, -0.5, 0.1, 15)
	qh, ql := out[16:48], out[48:176]
	clear(qh)
	m1, m2 := byte(1), byte(2)
	for n := 0; n < QK; n += 64 {
		for j := range 32 {
			l1, l2 := L[n+j], L[n+j+32]
			if l1 > 15 {
				l1 -= 16
				qh[j] |= m1
			}
			if l2 > 15 {
				l2 -= 16
				qh[j] |= m2
			}
			ql[n/2+j] = l1 | l2<<4
		}
		m1 <<= 2
		m2 <<= 2
	}
}

func quantQ2_K(out []byte, x []float32) {
	var L [QK]uint8
	var scales, mins [16]float32
	var w [16]float32
	var maxScale, maxMin float32
	for j := range 16 {
		xs := x[16*j : 16*j+16]
		for l, v := range xs {
			w[l] = float32(math.Abs(float64(v)))
		}
		scales[j], mins[j] = makeQKX2(3, xs, w[:], L[16*j:16*j+16], -0.5, 0.1, 15, true)
		maxScale, maxMin = max(maxScale, scales[j]), max(maxMin, mins[j])
	}
	sc := out[0:16]
	clear(sc)
	if maxScale > 0 {
		is := 15 / maxScale
		for j := range 16 {
			sc[j] = byte(nearestInt(is * scales[j]))
		}
	}
	putF16(out[80:], maxScale/15)
	if maxMin > 0 {
		is := 15 / maxMin
		for j := range 16 {
			sc[j] |= byte(nearestInt(is*mins[j])) << 4
		}
	}
	putF16(out[82:], maxMin/15)
	d, dmin := f16(out[80:]), f16(out[82:])
	for j := range 16 {
		dj := d * float32(sc[j]&0xf)
		if dj == 0 {
			continue
		}
		dm := dmin * float32(sc[j]>>4)
		for i := range 16 {
			L[16*j+i] = uint8(max(0, min(3, nearestInt((x[16*j+i]+dm)/dj))))
		}
	}
	qs := out[16:80]
	for j := 0; j < QK; j += 128 {
		for l := range 32 {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// makeQ3 is llama.cpp's make_q3_quants with do_rmse: levels -nmax..nmax-1
// for x (stored plus nmax in L), refined by up to five passes that move
// one level at a time while the weighted (x²) fit improves; it returns
// the scale.
func makeQ3(nmax int, x []float32, L []int8) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	if amax < 1e-15 {
		clear(L[:len(x)])
		return 0
	}
	iscale := float32(-nmax) / mx
	var sumLX, sumL2 float32
	for i, v := range x {
		l := max(-nmax, min(nmax-1, nearestInt(iscale*v)))
		L[i] = int8(l)
		w := v * v
		sumLX += w * v * float32(l)
		sumL2 += w * float32(l) * float32(l)
	}
	for range 5 {
		changed := 0
		for i, v := range x {
			w := v * v
			li := float32(L[i])
			slx := sumLX - w*v*li
			if slx <= 0 {
				continue
			}
			sl2 := sumL2 - w*li*li
			nl := max(-nmax, min(nmax-1, nearestInt(v*sl2/slx)))
			if nl == int(L[i]) {
				continue
			}
			fl := float32(nl)
			slx += w * v * fl
			sl2 += w * fl * fl
			if sl2 > 0 && slx*slx*sumL2 > sumLX*sumLX*sl2 {
				L[i], sumLX, sumL2 = int8(nl), slx, sl2
				changed++
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range x {
		L[i] += int8(nmax)
	}
	if sumL2 > 0 {
		return sumLX / sumL2
	}
	return 0
}

// quantQ3_K is llama.cpp's quantize_row_q3_K_ref.
func quantQ3_K(out []byte, x []float32) {
	var L [QK]int8
	var scales [16]float32
	var maxScale, amax float32
	for j := range 16 {
		scales[j] = makeQ3(4, x[16*j:16*j+16], L[16*j:16*j+16])
		if a := float32(math.Abs(float64(scales[j]))); a > amax {
			amax, maxScale = a, scales[j]
		}
	}
	hmask, qs, sp := out[0:32], out[32:96], out[96:108]
	clear(sp)
	if maxScale != 0 {
		iscale := -32 / maxScale
		for j := range 16 {
			l := byte(max(-32, min(31, nearestInt(iscale*scales[j]))) + 32)
			if j < 8 {
				sp[j] = l & 0xf
			} else {
				sp[j-8] |= (l & 0xf) << 4
			}
			sp[j%4+8] |= (l >> 4) << (2 * (j / 4))
		}
		putF16(out[108:], 1/iscale)
	} else {
		putF16(out[108:], 0)
	}
	d := f16(out[108:])
	for j, sc := range q3Scales(sp) {
		dj := d * float32(sc)
		if dj == 0 {
			continue // keep make_q3_quants' levels, as llama.cpp does
		}
		for i := range 16 {
			L[16*j+i] = int8(max(-4, min(3, nearestInt(x[16*j+i]/dj))) + 4)
		}
	}
	clear(hmask)
	m, hm := 0, byte(1)
	for j := range QK {
		if L[j] > 3 {
			hmask[m] |= hm
			L[j] -= 4
		}
		if m++; m == QK/8 {
			m, hm = 0, hm<<1
		}
	}
	for j := 0; j < QK; j += 128 {
		for l := range 32 {
			qs[j/4+l] = byte(L[j+l]) | byte(L[j+l+32])<<2 | byte(L[j+l+64])<<4 | byte(L[j+l+96])<<6
		}
	}
}

// makeQX is llama.cpp's make_qx_quants with rmse_type 1 (weights x²) and
// no importance weights: a symmetric scale for levels -nmax..nmax-1 found
// by trying 18 scales around -nmax/max; L gets the levels plus nmax.
func makeQX(nmax int, x []float32, L []int8) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	if amax < 1e-15 { // GROUP_MAX_EPS
		clear(L[:len(x)])
		return 0
	}
	level := func(iscale, v float32) int { return max(-nmax, min(nmax-1, nearestInt(iscale*v))) }
	iscale := float32(-nmax) / mx
	var sumLX, sumL2 float32
	for i, v := range x {
		l := level(iscale, v)
		L[i] = int8(l + nmax)
		w := v * v
		sumLX += w * v * float32(l)
		sumL2 += w * float32(l) * float32(l)
	}
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := scale * sumLX
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + 0.1*float32(is)) / mx
		sumLX, sumL2 = 0, 0
		for _, v := range x {
			l := float32(level(iscale, v))
			w := v * v
			sumLX += w * v * l
			sumL2 += w * l * l
		}
		if sumL2 > 0 && sumLX*sumLX > best*sumL2 {
			for i, v := range x {
				L[i] = int8(nmax + level(iscale, v))
			}
			scale = sumLX / sumL2
			best = scale * sumLX
		}
	}
	return scale
}

// quantQ6_K is llama.cpp's quantize_row_q6_K_ref.
func quantQ6_K(out []byte, x []float32) {
	clear(out[:210])
	var L [QK]int8
	var scales [16]float32
	var maxScale, maxAbs float32
	for j := range 16 {
		scales[j] = makeQX(32, x[16*j:16*j+16], L[16*j:16*j+16])
		if a := float32(math.Abs(float64(scales[j]))); a > maxAbs {
			maxAbs, maxScale = a, scales[j]
		}
	}
	if maxAbs < 1e-15 {
		return // all zero: d = 0 and every quant 0
	}
	iscale := -128 / maxScale
	putF16(out[208:], 1/iscale)
	sc := out[192:208]
	for j := range 16 {
		sc[j] = byte(int8(min(127, nearestInt(iscale*scales[j]))))
	}
	d := f16(out[208:])
	for j := range 16 {
		dj := d * float32(int8(sc[j]))
		if dj == 0 {
			continue // keep make_qx_quants' levels, as llama.cpp does
		}
		for i := range 16 {
			L[16*j+i] = int8(max(-32, min(31, nearestInt(x[16*j+i]/dj))) + 32)
		}
	}
	ql, qh := out[0:128], out[128:192]
	for j := 0; j < QK; j += 128 {
		for l := range 32 {
			q1, q2, q3, q4 := byte(L[j+l])&0xf, byte(L[j+l+32])&0xf, byte(L[j+l+64])&0xf, byte(L[j+l+96])&0xf
			ql[j/2+l] = q1 | q3<<4
			ql[j/2+l+32] = q2 | q4<<4
			qh[j/4+l] = byte(L[j+l])>>4 | (byte(L[j+l+32])>>4)<<2 | (byte(L[j+l+64])>>4)<<4 | (byte(L[j+l+96])>>4)<<6
		}
	}
}
