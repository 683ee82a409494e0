package engine

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// matrix is a row-major weight matrix of rows×cols, stored as float32
// (possibly a view into a memory-mapped file), as Q8_0 blocks unpacked
// into int8 quants and float32 block scales, or as the file's blocks of
// another quantised type (used in place, so a memory-mapped K-quant model
// costs its file size and is shared between processes).
type matrix struct {
	rows, cols int
	f32        []float32
	q8         []int8    // rows*cols quants (Q8_0)
	q8d        []float32 // rows*cols/32 scales (Q8_0)
	raw        []byte    // rows*rowBytes bytes of blocks of type typ
	typ        gguf.TensorType
	rowBytes   int
}

// quantized reports whether the matrix is stored quantised.
func (m *matrix) quantized() bool { return m.q8 != nil || m.raw != nil }

// row writes row r as float32 into dst (len cols).
func (m *matrix) row(dst []float32, r int) {
	if m.raw != nil {
		// The sizes were checked on load, so this cannot fail.
		_ = gguf.Dequantize(m.typ, dst[:m.cols], m.raw[r*m.rowBytes:(r+1)*m.rowBytes])
		return
	}
	if !m.quantized() {
		copy(dst, m.f32[r*m.cols:(r+1)*m.cols])
		return
	}
	q := m.q8[r*m.cols : (r+1)*m.cols]
	d := m.q8d[r*m.cols/gguf.Q8_0BlockSize:]
	for j := range dst[:m.cols] {
		dst[j] = d[j/gguf.Q8_0BlockSize] * float32(q[j])
	}
}

// mulRows sets out[r] = Σ_j W[r][j]·x[j] for rows r0 ≤ r < r1.
func (m *matrix) mulRows(out, x []float32, r0, r1 int) {
	if m.raw != nil {
		x = x[:m.cols]
		for r := r0; r < r1; r++ {
			out[r] = gguf.Dot(m.typ, m.raw[r*m.rowBytes:(r+1)*m.rowBytes], x)
		}
		return
	}
	if m.q8 != nil {
		mulRowsQ8(out, m.q8, m.q8d, x[:m.cols], r0, r1)
		return
	}
	mulRowsF32(out, m.f32, x[:m.cols], r0, r1)
}

// mulRowsF32 is the float32 matrix-vector kernel. Each output is summed
// sequentially over j, exactly as llama2.c's matmul does
// (val += w[i*n+j] * x[j]), so results are bit-for-bit those of run.c. The
// speed comes from computing four rows at once: four independent sums give
// the CPU parallel work without changing any sum's order. The explicit
// float32 conversions forbid the compiler from fusing multiply and add.
func mulRowsF32(out, w, x []float32, r0, r1 int) {
	n := len(x)
	i := r0
	for ; i+4 <= r1; i += 4 {
		w0 := w[i*n:][:len(x)]
		w1 := w[(i+1)*n:][:len(x)]
		w2 := w[(i+2)*n:][:len(x)]
		w3 := w[(i+3)*n:][:len(x)]
		var s0, s1, s2, s3 float32
		for j, xv := range x {
			s0 += float32(w0[j] * xv)
			s1 += float32(w1[j] * xv)
			s2 += float32(w2[j] * xv)
			s3 += float32(w3[j] * xv)
		}
		o := out[i : i+4 : i+4]
		o[0], o[1], o[2], o[3] = s0, s1, s2, s3
	}
	for ; i < r1; i++ {
		row := w[i*n:][:len(x)]
		var s float32
		for j, xv := range x {
			s += float32(row[j] * xv)
		}
		out[i] = s
	}
}

// mulRowsQ8 is the Q8_0 kernel: per 32-value block, the int8 dot product
// with x is scaled by the block's scale and accumulated. Four rows share
// each block of x.
func mulRowsQ8(out []float32, q []int8, d []float32, x []float32, r0, r1 int) {
	const bs = gguf.Q8_0BlockSize
	n := len(x)
	nb := n / bs
	i := r0
	for ; i+4 <= r1; i += 4 {
		q0 := q[i*n:][:len(x)]
		q1 := q[(i+1)*n:][:len(x)]
		q2 := q[(i+2)*n:][:len(x)]
		q3 := q[(i+3)*n:][:len(x)]
		d0 := d[i*nb:][:nb]
		d1 := d[(i+1)*nb:][:nb]
		d2 := d[(i+2)*nb:][:nb]
		d3 := d[(i+3)*nb:][:nb]
		var s0, s1, s2, s3 float32
		for b := range d0 {
			xb := x[b*bs:][:bs]
			a0, a1, a2, a3 := q0[b*bs:][:bs], q1[b*bs:][:bs], q2[b*bs:][:bs], q3[b*bs:][:bs]
			var t0, t1, t2, t3 float32
			for j, xv := range xb {
				t0 += float32(a0[j]) * xv
				t1 += float32(a1[j]) * xv
				t2 += float32(a2[j]) * xv
				t3 += float32(a3[j]) * xv
			}
			s0 += t0 * d0[b]
			s1 += t1 * d1[b]
			s2 += t2 * d2[b]
			s3 += t3 * d3[b]
		}
		o := out[i : i+4 : i+4]
		o[0], o[1], o[2], o[3] = s0, s1, s2, s3
	}
	for ; i < r1; i++ {
		q0 := q[i*n:][:len(x)]
		d0 := d[i*nb:][:nb]
		var s0 float32
		for b := range d0 {
			xb := x[b*bs:][:bs]
			a0 := q0[b*bs:][:bs]
			var t0 float32
			for j, xv := range xb {
				t0 += float32(a0[j]) * xv
			}
			s0 += t0 * d0[b]
		}
		out[i] = s0
	}
}

// nativeLittleEndian reports whether float32 bytes in a file can be used
// in place.
var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// float32s returns the little-endian float32 values in b. When b is
// 4-byte aligned on a little-endian machine the result aliases b (no copy:
// a memory-mapped file stays shared); otherwise the values are decoded into
// a new slice. len(b) must be a multiple of 4.
func float32s(b []byte) []float32 {
	n := len(b) / 4
	if n == 0 {
		return nil
	}
	if nativeLittleEndian && uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// float16s decodes little-endian IEEE half-precision values.
func float16s(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = gguf.Float16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// unpackQ8 splits Q8_0 blocks into quants and float32 scales.
func unpackQ8(b []byte) (q []int8, d []float32) {
	nb := len(b) / gguf.Q8_0BlockBytes
	q = make([]int8, nb*gguf.Q8_0BlockSize)
	d = make([]float32, nb)
	for i := range nb {
		blk := b[i*gguf.Q8_0BlockBytes : (i+1)*gguf.Q8_0BlockBytes]
		d[i] = gguf.Float16(binary.LittleEndian.Uint16(blk))
		for j := range gguf.Q8_0BlockSize {
			q[i*gguf.Q8_0BlockSize+j] = int8(blk[2+j])
		}
	}
	return q, d
}
