package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Q8_0 blocks hold 32 values as a float16 scale d followed by 32 int8
// quants q; value i is d*q[i]. The layout is llama.cpp's block_q8_0.
const (
	Q8_0BlockSize  = 32 // values per block
	Q8_0BlockBytes = 34 // bytes per block
)

// Float16 converts IEEE 754 half-precision bits to float32 (exact).
func Float16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0:
		f := float32(mant) * (1.0 / (1 << 24)) // subnormal: mant × 2⁻²⁴, exact
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float16Bits converts f to IEEE 754 half precision, rounding to nearest
// even; values too large become ±Inf, NaN stays NaN.
func Float16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		hm := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && hm&1 == 1) {
			hm++
		}
		return sign | uint16(hm)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is the correct rounding, up to Inf
	}
	return sign | uint16(h)
}

// QuantizeQ8_0 encodes src (a multiple of 32 values) as Q8_0 blocks into
// dst, which must hold len(src)/32*34 bytes. It follows llama.cpp's
// reference quantize_row_q8_0: d = max|x|/127, q = round(x/d).
func QuantizeQ8_0(dst []byte, src []float32) error {
	if len(src)%Q8_0BlockSize != 0 || len(dst) != len(src)/Q8_0BlockSize*Q8_0BlockBytes {
		return fmt.Errorf("%w: Q8_0 of %d values into %d bytes", ErrWrite, len(src), len(dst))
	}
	for b := 0; b < len(src)/Q8_0BlockSize; b++ {
		x := src[b*Q8_0BlockSize : (b+1)*Q8_0BlockSize]
		out := dst[b*Q8_0BlockBytes : (b+1)*Q8_0BlockBytes]
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		binary.LittleEndian.PutUint16(out, Float16Bits(d))
		for j, v := range x {
			out[2+j] = byte(int8(math.Round(float64(v * id))))
		}
	}
	return nil
}

// DequantizeQ8_0 decodes Q8_0 blocks from src into dst, which must hold
// len(src)/34*32 values.
func DequantizeQ8_0(dst []float32, src []byte) error {
	if len(src)%Q8_0BlockBytes != 0 || len(dst) != len(src)/Q8_0BlockBytes*Q8_0BlockSize {
		return fmt.Errorf("%w: Q8_0 of %d bytes into %d values", ErrCorrupt, len(src), len(dst))
	}
	for b := 0; b < len(src)/Q8_0BlockBytes; b++ {
		blk := src[b*Q8_0BlockBytes : (b+1)*Q8_0BlockBytes]
		d := Float16(binary.LittleEndian.Uint16(blk))
		for j := 0; j < Q8_0BlockSize; j++ {
			dst[b*Q8_0BlockSize+j] = d * float32(int8(blk[2+j]))
		}
	}
	return nil
}
