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

// acts is the input vector of a matrix product in the forms its matrices
// read: float32 for float matrices, Q8_K for K-quant matrices, Q8_0/Q8_1
// blocks for Q8_0 and the legacy types. As llama.cpp does, the vector is
// quantised once per product (by the goroutine that dispatches it) and
// every row's integer dot product reuses it.
type acts struct {
	x []float32
	k gguf.Q8K
	b gguf.Q8Blocks
}

// actNeeds says which quantised forms a model's matrices read.
type actNeeds struct{ k, b bool }

// need records the form m reads.
func (n *actNeeds) need(m *matrix) {
	switch {
	case m.raw != nil && m.typ.BlockSize() == gguf.QK:
		n.k = true
	case m.quantized():
		n.b = true
	}
}

// set makes a the activations of x, in the forms needs asks for that x's
// length allows (a matrix reading a form has whole blocks of it per row).
func (a *acts) set(x []float32, needs actNeeds) {
	a.x = x
	if needs.k && len(x)%gguf.QK == 0 {
		a.k.Quantize(x)
	}
	if needs.b && len(x)%gguf.Q8_0BlockSize == 0 {
		a.b.Quantize(x)
	}
}

// mulRows sets out[r] = Σ_j W[r][j]·x[j] for rows r0 ≤ r < r1, where a
// holds x (set with the needs of this matrix). Float matrices multiply
// with x itself; quantised ones take integer dot products with x's 8-bit
// form, as llama.cpp's CPU backend does.
func (m *matrix) mulRows(out []float32, a *acts, r0, r1 int) {
	switch {
	case m.raw != nil && m.typ.BlockSize() == gguf.QK:
		for r := r0; r < r1; r++ {
			out[r] = gguf.DotQ8K(m.typ, m.raw[r*m.rowBytes:(r+1)*m.rowBytes], &a.k)
		}
	case m.raw != nil:
		for r := r0; r < r1; r++ {
			out[r] = gguf.DotQ8(m.typ, m.raw[r*m.rowBytes:(r+1)*m.rowBytes], &a.b)
		}
	case m.q8 != nil:
		n, nb := m.cols, m.cols/gguf.Q8_0BlockSize
		for r := r0; r < r1; r++ {
			out[r] = gguf.DotQ8Unpacked(m.q8[r*n:(r+1)*n], m.q8d[r*nb:(r+1)*nb], &a.b)
		}
	default:
		mulRowsF32(out, m.f32, a.x[:m.cols], r0, r1)
	}
}

// mulRowsBatch sets outs[i][r] = W[r]·x_i for rows r0 ≤ r < r1 and the
// first n vectors of as: a prompt's tokens. Quantised rows are multiplied
// two rows by four vectors per kernel call (gguf.DotQ8K2x4 for the
// K-quants, gguf.DotQ8Unpacked2x4 for Q8_0: each reads a row once for the
// four vectors and an activation block once for the two rows, and gives
// the one-vector values bit for bit), an odd last row with four vectors
// (DotQ8Kx4, DotQ8Unpackedx4); the remaining vectors, and the other
// matrices, are taken one by one.
func (m *matrix) mulRowsBatch(outs [][]float32, as []acts, n, r0, r1 int) {
	i := 0
	var res [4]float32
	var res8 [8]float32
	switch {
	case m.raw != nil && m.typ.BlockSize() == gguf.QK:
		var ks [4]*gguf.Q8K
		var k4 gguf.Q8Kx4
		for ; i+4 <= n; i += 4 {
			for t := range ks {
				ks[t] = &as[i+t].k
			}
			k4.Set(&ks, m.cols)
			o0, o1, o2, o3 := outs[i], outs[i+1], outs[i+2], outs[i+3]
			r := r0
			for ; r+2 <= r1; r += 2 {
				rb := m.raw[r*m.rowBytes : (r+2)*m.rowBytes]
				gguf.DotQ8K2x4(m.typ, rb[:m.rowBytes], rb[m.rowBytes:], &k4, &res8)
				o0[r], o1[r], o2[r], o3[r] = res8[0], res8[1], res8[2], res8[3]
				o0[r+1], o1[r+1], o2[r+1], o3[r+1] = res8[4], res8[5], res8[6], res8[7]
			}
			for ; r < r1; r++ {
				gguf.DotQ8Kx4(m.typ, m.raw[r*m.rowBytes:(r+1)*m.rowBytes], &ks, &res)
				o0[r], o1[r], o2[r], o3[r] = res[0], res[1], res[2], res[3]
			}
		}
	case m.q8 != nil:
		var bs [4]*gguf.Q8Blocks
		var b4 gguf.Q8Blocksx4
		c, nb := m.cols, m.cols/gguf.Q8_0BlockSize
		for ; i+4 <= n; i += 4 {
			for t := range bs {
				bs[t] = &as[i+t].b
			}
			b4.Set(&bs, c)
			o0, o1, o2, o3 := outs[i], outs[i+1], outs[i+2], outs[i+3]
			r := r0
			for ; r+2 <= r1; r += 2 {
				gguf.DotQ8Unpacked2x4(m.q8[r*c:(r+1)*c], m.q8[(r+1)*c:(r+2)*c], m.q8d[r*nb:(r+1)*nb], m.q8d[(r+1)*nb:(r+2)*nb], &b4, &res8)
				o0[r], o1[r], o2[r], o3[r] = res8[0], res8[1], res8[2], res8[3]
				o0[r+1], o1[r+1], o2[r+1], o3[r+1] = res8[4], res8[5], res8[6], res8[7]
			}
			for ; r < r1; r++ {
				gguf.DotQ8Unpackedx4(m.q8[r*c:(r+1)*c], m.q8d[r*nb:(r+1)*nb], &bs, &res)
				o0[r], o1[r], o2[r], o3[r] = res[0], res[1], res[2], res[3]
			}
		}
	}
	for ; i < n; i++ {
		m.mulRows(outs[i], &as[i], r0, r1)
	}
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
