package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Block layouts of the quantised types, exactly as llama.cpp's
// ggml-common.h declares them (all little-endian, float16 scales):
//
//	Q4_0  32 values, 18 bytes: d, qs[16]            x = (nibble-8)·d
//	Q4_1  32 values, 20 bytes: d, m, qs[16]         x = nibble·d + m
//	Q5_0  32 values, 22 bytes: d, qh[4], qs[16]     x = (nibble|bit<<4 - 16)·d
//	Q5_1  32 values, 24 bytes: d, m, qh[4], qs[16]  x = (nibble|bit<<4)·d + m
//	Q8_0  32 values, 34 bytes: d, qs[32] int8       x = q·d
//	Q2_K 256 values, 84 bytes: scales[16], qs[64], d, dmin
//	Q3_K 256 values, 110 bytes: hmask[32], qs[64], scales[12], d
//	Q4_K 256 values, 144 bytes: d, dmin, scales[12], qs[128]
//	Q5_K 256 values, 176 bytes: d, dmin, scales[12], qh[32], qs[128]
//	Q6_K 256 values, 210 bytes: ql[128], qh[64], scales[16] int8, d
//
// In the legacy types value j < 16 is the low nibble of qs[j] and value
// j+16 its high nibble. The K-quants split a 256-value super-block into
// sub-blocks of 16 (Q2_K, Q3_K, Q6_K) or 32 (Q4_K, Q5_K) values, each with
// a small integer scale (and min) relative to the float16 super-scales.
//
// Every type decodes the same way here: a block becomes integer quants q
// and per-sub-block factors a (scale) and b (offset), and value i of
// sub-block s is a[s]·q[i] + b[s]. The factors are computed with the same
// float32 operations as llama.cpp's dequantize_row_* (for example Q4_K's
// a = d·sc and b = -(dmin·m), where llama.cpp writes d1·q - m1), so
// Dequantize gives llama.cpp's values bit for bit, and a dot product can be
// taken on the integer quants, a[s]·Σq·x + b[s]·Σx, without materialising
// the float32 weights.

// QK is the K-quants' super-block size.
const QK = 256

// maxSub is the largest number of sub-blocks in a block (Q2_K, Q3_K, Q6_K).
const maxSub = 16

// codec describes how one quantised type decodes.
type codec struct {
	sub    int  // values per sub-block
	hasMin bool // b is not always zero
}

var codecs = map[TensorType]codec{
	Q4_0: {32, false}, Q4_1: {32, true}, Q5_0: {32, false}, Q5_1: {32, true}, Q8_0: {32, false},
	Q2_K: {16, true}, Q3_K: {16, false}, Q4_K: {32, true}, Q5_K: {32, true}, Q6_K: {16, false},
}

// decode decodes one block of type t. It is a switch rather than a table
// of functions so that the compiler sees the callees and keeps the
// caller's buffers on the stack: the token loop must not allocate.
func decode(t TensorType, blk []byte, q *[QK]int8, a, b *[maxSub]float32) {
	switch t {
	case Q4_0:
		decodeQ4_0(blk, q, a, b)
	case Q4_1:
		decodeQ4_1(blk, q, a, b)
	case Q5_0:
		decodeQ5_0(blk, q, a, b)
	case Q5_1:
		decodeQ5_1(blk, q, a, b)
	case Q8_0:
		decodeQ8_0(blk, q, a, b)
	case Q2_K:
		decodeQ2_K(blk, q, a, b)
	case Q3_K:
		decodeQ3_K(blk, q, a, b)
	case Q4_K:
		decodeQ4_K(blk, q, a, b)
	case Q5_K:
		decodeQ5_K(blk, q, a, b)
	case Q6_K:
		decodeQ6_K(blk, q, a, b)
	}
}

// Computable reports whether Dequantize and Dot implement type t.
func (t TensorType) Computable() bool {
	_, ok := codecs[t]
	return ok || t == F32 || t == F16 || t == BF16
}

// Quantised reports whether t is a block-quantised type Dot computes on
// without widening to float32.
func (t TensorType) Quantised() bool {
	_, ok := codecs[t]
	return ok
}

// BlockBytes is the number of bytes of one block (0 for an unknown type).
func (t TensorType) BlockBytes() int { return int(tensorTypes[t].typeSize) }

func f16(b []byte) float32 { return Float16(binary.LittleEndian.Uint16(b)) }

func decodeQ4_0(blk []byte, q *[QK]int8, a, _ *[maxSub]float32) {
	a[0] = f16(blk)
	qs := blk[2:18]
	for j, v := range qs {
		q[j] = int8(v&0xf) - 8
		q[j+16] = int8(v>>4) - 8
	}
}

func decodeQ4_1(blk []byte, q *[QK]int8, a, b *[maxSub]float32) {
	a[0], b[0] = f16(blk), f16(blk[2:])
	qs := blk[4:20]
	for j, v := range qs {
		q[j] = int8(v & 0xf)
		q[j+16] = int8(v >> 4)
	}
}

func decodeQ5_0(blk []byte, q *[QK]int8, a, _ *[maxSub]float32) {
	a[0] = f16(blk)
	qh := binary.LittleEndian.Uint32(blk[2:])
	qs := blk[6:22]
	for j, v := range qs {
		// bit j of qh is value j's fifth bit, bit j+16 value j+16's.
		q[j] = int8(v&0xf|byte(qh>>j&1)<<4) - 16
		q[j+16] = int8(v>>4|byte(qh>>(j+16)&1)<<4) - 16
	}
}

func decodeQ5_1(blk []byte, q *[QK]int8, a, b *[maxSub]float32) {
	a[0], b[0] = f16(blk), f16(blk[2:])
	qh := binary.LittleEndian.Uint32(blk[4:])
	qs := blk[8:24]
	for j, v := range qs {
		q[j] = int8(v&0xf | byte(qh>>j&1)<<4)
		q[j+16] = int8(v>>4 | byte(qh>>(j+16)&1)<<4)
	}
}

func decodeQ8_0(blk []byte, q *[QK]int8, a, _ *[maxSub]float32) {
	a[0] = f16(blk)
	for j, v := range blk[2:34] {
		q[j] = int8(v)
	}
}

func decodeQ2_K(blk []byte, q *[QK]int8, a, b *[maxSub]float32) {
	scales, qs := blk[0:16], blk[16:80]
	d, dmin := f16(blk[80:]), f16(blk[82:])
	for s, sc := range scales {
		a[s] = d * float32(sc&0xf)
		b[s] = -(dmin * float32(sc>>4))
	}
	// Each 128-value half reads 32 bytes four times, two bits at a time;
	// bytes 0-15 feed one sub-block of 16 and bytes 16-31 the next.
	for n := 0; n < QK; n += 128 {
		src := qs[n/4 : n/4+32]
		for j := range 4 {
			shift := 2 * j
			out := q[n+32*j : n+32*j+32]
			for l, v := range src {
				out[l] = int8(v >> shift & 3)
			}
		}
	}
}

// q3Scales unpacks Q3_K's twelve bytes into sixteen 6-bit scales, as
// llama.cpp's kmask shuffle does: the low four bits come from bytes 0-7
// (low nibbles for scales 0-7, high for 8-15), the top two from bytes 8-11.
func q3Scales(p []byte) [16]int8 {
	var sc [16]int8
	for j := range 16 {
		var lo byte
		if j < 8 {
			lo = p[j] & 0xf
		} else {
			lo = p[j-8] >> 4
		}
		hi := p[8+j%4] >> (2 * (j / 4)) & 3
		sc[j] = int8(lo|hi<<4) - 32
	}
	return sc
}

func decodeQ3_K(blk []byte, q *[QK]int8, a, _ *[maxSub]float32) {
	hmask, qs := blk[0:32], blk[32:96]
	d := f16(blk[108:])
	for s, sc := range q3Scales(blk[96:108]) {
		a[s] = d * float32(sc)
	}
	m := byte(1)
	for n := 0; n < QK; n += 128 {
		src := qs[n/4 : n/4+32]
		for j := range 4 {
			shift := 2 * j
			out := q[n+32*j : n+32*j+32]
			for l, v := range src {
				v := int8(v >> shift & 3)
				if hmask[l]&m == 0 {
					v -= 4
				}
				out[l] = v
			}
			m <<= 1
		}
	}
}

// scaleMinK4 is llama.cpp's get_scale_min_k4: eight 6-bit scales and eight
// 6-bit mins packed into twelve bytes.
func scaleMinK4(j int, p []byte) (sc, m byte) {
	if j < 4 {
		return p[j] & 63, p[j+4] & 63
	}
	return p[j+4]&0xf | (p[j-4]>>6)<<4, p[j+4]>>4 | (p[j]>>6)<<4
}

func decodeQ4_K(blk []byte, q *[QK]int8, a, b *[maxSub]float32) {
	d, dmin := f16(blk), f16(blk[2:])
	scales, qs := blk[4:16], blk[16:144]
	for s := range 8 {
		sc, m := scaleMinK4(s, scales)
		a[s] = d * float32(sc)
		b[s] = -(dmin * float32(m))
	}
	for j := 0; j < QK; j += 64 {
		src := qs[j/2 : j/2+32]
		for l, v := range src {
			q[j+l] = int8(v & 0xf)
			q[j+32+l] = int8(v >> 4)
		}
	}
}

func decodeQ5_K(blk []byte, q *[QK]int8, a, b *[maxSub]float32) {
	d, dmin := f16(blk), f16(blk[2:])
	scales, qh, qs := blk[4:16], blk[16:48], blk[48:176]
	for s := range 8 {
		sc, m := scaleMinK4(s, scales)
		a[s] = d * float32(sc)
		b[s] = -(dmin * float32(m))
	}
	u := byte(1)
	for j := 0; j < QK; j += 64 {
		src := qs[j/2 : j/2+32]
		for l, v := range src {
			lo, hi := v&0xf, v>>4
			if qh[l]&u != 0 {
				lo += 16
			}
			if qh[l]&(u<<1) != 0 {
				hi += 16
			}
			q[j+l], q[j+32+l] = int8(lo), int8(hi)
		}
		u <<= 2
	}
}

func decodeQ6_K(blk []byte, q *[QK]int8, a, _ *[maxSub]float32) {
	ql, qh, scales := blk[0:128], blk[128:192], blk[192:208]
	d := f16(blk[208:])
	for s, sc := range scales {
		a[s] = d * float32(int8(sc))
	}
	for n := 0; n < QK; n += 128 {
		l4, h := ql[n/2:n/2+64], qh[n/4:n/4+32]
		for l := range 32 {
			q[n+l] = int8(l4[l]&0xf|(h[l]&3)<<4) - 32
			q[n+l+32] = int8(l4[l+32]&0xf|(h[l]>>2&3)<<4) - 32
			q[n+l+64] = int8(l4[l]>>4|(h[l]>>4&3)<<4) - 32
			q[n+l+96] = int8(l4[l+32]>>4|(h[l]>>6&3)<<4) - 32
		}
	}
}

// BFloat16 converts bfloat16 bits to float32 (exact).
func BFloat16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// BFloat16Bits converts f to bfloat16 rounding to nearest even, with NaN
// kept quiet, as llama.cpp's ggml_compute_fp32_to_bf16.
func BFloat16Bits(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + 0x7fff + (u >> 16 & 1)) >> 16)
}

// checkSizes verifies that src holds a whole number of t's blocks and that
// dst has room for exactly the values they encode.
func checkSizes(t TensorType, values, nbytes int, err error) (int, error) {
	ti, ok := tensorTypes[t]
	if !ok {
		return 0, fmt.Errorf("%w %d", ErrTensorType, uint32(t))
	}
	bs, tb := int(ti.blockSize), int(ti.typeSize)
	if values%bs != 0 || nbytes != values/bs*tb {
		return 0, fmt.Errorf("%w: %d %s values in %d bytes", err, values, t, nbytes)
	}
	return values / bs, nil
}

// Dequantize decodes src, a whole number of t's blocks, into dst, which
// must hold exactly the values they encode. The results are llama.cpp's
// dequantize_row_* values bit for bit.
func Dequantize(t TensorType, dst []float32, src []byte) error {
	if !t.Computable() {
		return fmt.Errorf("%w: cannot decode %s", ErrTensorType, t)
	}
	nb, err := checkSizes(t, len(dst), len(src), ErrCorrupt)
	if err != nil {
		return err
	}
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return nil
	case F16:
		for i := range dst {
			dst[i] = Float16(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return nil
	case BF16:
		for i := range dst {
			dst[i] = BFloat16(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return nil
	}
	c := codecs[t]
	bs, tb := t.BlockSize(), t.BlockBytes()
	var q [QK]int8
	var a, b [maxSub]float32
	for i := range nb {
		decode(t, src[i*tb:(i+1)*tb], &q, &a, &b)
		out := dst[i*bs : (i+1)*bs]
		for j := range out {
			s := j / c.sub
			v := float32(a[s] * float32(q[j])) // no fused multiply-add
			if c.hasMin {
				v += b[s]
			}
			out[j] = v
		}
	}
	return nil
}

// Dot returns Σ w[j]·x[j] where w is one row of a quantised type t, given
// as its blocks (len(row) = len(x)/BlockSize·BlockBytes; the caller
// checks). Per sub-block it sums the integer quants times x in float32 and
// applies the sub-block's scale and offset once, so it differs from the
// dot product of the dequantised row only by float32 rounding (see the
// bound in TestDotMatchesDequantized).
func Dot(t TensorType, row []byte, x []float32) float32 {
	switch t {
	case Q4_K:
		return dotQ4K(row, x)
	case Q6_K:
		return dotQ6K(row, x)
	}
	return dotGeneric(t, row, x)
}

// dotGeneric is Dot through the block decoder, for every quantised type.
func dotGeneric(t TensorType, row []byte, x []float32) float32 {
	c := codecs[t]
	bs, tb := t.BlockSize(), t.BlockBytes()
	var q [QK]int8
	var a, b [maxSub]float32
	var sum float32
	for i := range len(x) / bs {
		decode(t, row[i*tb:(i+1)*tb], &q, &a, &b)
		xb := x[i*bs : (i+1)*bs]
		for s := range bs / c.sub {
			xs := xb[s*c.sub : (s+1)*c.sub]
			qs := q[s*c.sub : (s+1)*c.sub]
			var t, sx float32
			for j, xv := range xs {
				t += float32(float32(qs[j]) * xv)
			}
			sum += float32(a[s] * t)
			if c.hasMin {
				for _, xv := range xs {
					sx += xv
				}
				sum += float32(b[s] * sx)
			}
		}
	}
	return sum
}
