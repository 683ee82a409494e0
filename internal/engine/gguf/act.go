package gguf

import "math"

// Activations quantised to 8 bits, as llama.cpp quantises the input vector
// of a matrix product before its integer dot products (ggml's vec_dot_type):
// the K-quants multiply with Q8_K activations (one float32 scale per 256
// values, plus the sums of each 16 quants), the legacy types and Q8_0 with
// Q8_0 / Q8_1 activations (one float16 scale per 32 values, plus d·Σq for
// Q8_1). A vector is quantised once per product and every row reuses it.

// Q8K is a vector quantised as llama.cpp's block_q8_K (quantize_row_q8_K_ref,
// which ggml-cpu also uses on x86): per 256 values a scale D = max/-127 where
// max is the value of largest magnitude, quants round(x/D) clamped to 127, and
// the sum of every 16 quants.
type Q8K struct {
	D     []float32 // one per 256 values
	Qs    []int8    // len(x) quants
	Bsums []int16   // one per 16 values
}

// Quantize sets a to x, reusing a's buffers (no allocation once they are
// large enough). len(x) must be a multiple of 256.
func (a *Q8K) Quantize(x []float32) {
	nb := len(x) / QK
	a.D = grow(a.D, nb)
	a.Qs = grow(a.Qs, nb*QK)
	a.Bsums = grow(a.Bsums, nb*QK/16)
	for i := range nb {
		xb := x[i*QK : (i+1)*QK]
		qs := a.Qs[i*QK : (i+1)*QK]
		var amax, vmax float32
		for _, v := range xb {
			if av := float32(math.Abs(float64(v))); av > amax {
				amax, vmax = av, v
			}
		}
		bs := a.Bsums[i*QK/16 : (i+1)*QK/16]
		if amax == 0 {
			a.D[i] = 0
			clear(qs)
			clear(bs)
			continue
		}
		iscale := -127 / vmax
		for j, v := range xb {
			qs[j] = int8(min(nearestInt(iscale*v), 127)) // nearest_int, then MIN(127, v)
		}
		for j := range bs {
			var s int16
			for _, q := range qs[16*j : 16*j+16] {
				s += int16(q)
			}
			bs[j] = s
		}
		a.D[i] = 1 / iscale
	}
}

// Q8Blocks is a vector quantised in 32-value blocks as llama.cpp's
// block_q8_0 and block_q8_1 (ggml-cpu's AVX2 quantize_row_q8_0/q8_1): per
// block d = max|x|/127 rounded to float16, quants round-half-even(x·127/max),
// and s = d·Σq rounded to float16 (used by the types with a minimum, Q4_1 and
// Q5_1).
type Q8Blocks struct {
	D  []float32 // one per 32 values (float16 values)
	S  []float32 // one per 32 values (float16 values)
	Qs []int8
}

// Quantize sets a to x, reusing a's buffers. len(x) must be a multiple of 32.
func (a *Q8Blocks) Quantize(x []float32) {
	const bs = Q8_0BlockSize
	nb := len(x) / bs
	a.D = grow(a.D, nb)
	a.S = grow(a.S, nb)
	a.Qs = grow(a.Qs, nb*bs)
	for i := range nb {
		xb := x[i*bs : (i+1)*bs]
		qs := a.Qs[i*bs : (i+1)*bs]
		var amax float32
		for _, v := range xb {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		var sum int32
		for j, v := range xb {
			q := int8(math.RoundToEven(float64(float32(v * id))))
			qs[j] = q
			sum += int32(q)
		}
		a.D[i] = Float16(Float16Bits(d))
		a.S[i] = Float16(Float16Bits(d * float32(sum)))
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
