package gguf

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestQ8KQuantize checks Q8K against llama.cpp's quantize_row_q8_K_ref on
// hand-made values: the scale comes from the value of largest magnitude
// (here negative, so the quants are not mirrored), halves round to even,
// and the 16-value sums are the quants' sums.
func TestQ8KQuantize(t *testing.T) {
	x := make([]float32, 512)
	x[0], x[1], x[2], x[3] = -2, 1, 0.5/127*2, 1.5/127*2 // 0.5 and 1.5 steps of 2/127
	x[300] = 4                                           // second super-block: max 4
	x[301] = -4
	var a Q8K
	a.Quantize(x)
	if a.D[0] != 1/(-127/float32(-2)) || a.D[1] != 1/(-127/float32(4)) {
		t.Fatalf("scales %v", a.D)
	}
	if got := a.Qs[:4]; got[0] != -127 || got[1] != 64 || got[2] != 0 || got[3] != 2 {
		// 1·63.5 rounds to 64 (even), 0.5 to 0, 1.5 to 2.
		t.Errorf("quants %v, want [-127 64 0 2]", got)
	}
	if a.Bsums[0] != -127+64+0+2 {
		t.Errorf("bsum %d", a.Bsums[0])
	}
	// iscale = -127/4: x=4 gives -127, x=-4 gives 127.
	if a.Qs[300] != -127 || a.Qs[301] != 127 {
		t.Errorf("second block quants %d %d", a.Qs[300], a.Qs[301])
	}
	// Zeros: scale 0 and quants 0, also when the buffers are reused.
	clear(x)
	a.Quantize(x)
	for i, q := range a.Qs {
		if q != 0 {
			t.Fatalf("quant %d = %d for zero input", i, q)
		}
	}
	if a.D[0] != 0 || a.Bsums[0] != 0 {
		t.Errorf("zero input: d %v, bsum %d", a.D[0], a.Bsums[0])
	}
}

// TestQ8BlocksQuantize checks Q8Blocks against ggml-cpu's AVX2
// quantize_row_q8_1: d = max|x|/127 as float16, quants x·127/max rounded
// half to even, s = d·Σq as float16.
func TestQ8BlocksQuantize(t *testing.T) {
	x := make([]float32, 64)
	x[0], x[1], x[2] = 127, 0.5, -2.5 // max 127: the quants are x rounded
	var a Q8Blocks
	a.Quantize(x)
	if a.Qs[0] != 127 || a.Qs[1] != 0 || a.Qs[2] != -2 {
		t.Errorf("quants %v", a.Qs[:3])
	}
	if a.D[0] != 1 || a.S[0] != 125 || a.D[1] != 0 || a.S[1] != 0 {
		t.Errorf("d %v s %v", a.D, a.S)
	}
}

// dotReference is Σ w_j·y_j in float64 over the dequantised row and the
// dequantised activations, and Σ |w_j·y_j| for the tolerance.
func dotReference(t *testing.T, typ TensorType, row []byte, y []float64) (dot, mag float64) {
	w := make([]float32, len(y))
	if err := Dequantize(typ, w, row); err != nil {
		t.Fatal(err)
	}
	for j := range w {
		dot += float64(w[j]) * y[j]
		mag += math.Abs(float64(w[j]) * y[j])
	}
	return dot, mag
}

// TestIntegerDotsMatchDequantized: DotQ8K and DotQ8 equal the float64 dot
// product of the dequantised row with the dequantised activations (what
// llama.cpp's integer dot products compute) up to float32 rounding, for
// every type, on quantised rows and on arbitrary block bytes. For the
// types with a minimum, the activations' d·Σq is a float16 (s of
// block_q8_1), which the reference uses too.
func TestIntegerDotsMatchDequantized(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, typ := range quantTypes {
		for _, n := range []int{256, 2048} {
			w, x := randomRow(r, n), randomRow(r, n)
			sz, _ := typ.RowSize(uint64(n))
			row := make([]byte, sz)
			if err := Quantize(typ, row, w); err != nil {
				t.Fatal(err)
			}
			for round := range 2 {
				var got float32
				var dot, mag float64
				y := make([]float64, n)
				if typ.BlockSize() == QK {
					var a Q8K
					a.Quantize(x)
					for j := range y {
						y[j] = float64(a.D[j/QK]) * float64(a.Qs[j])
					}
					got = DotQ8K(typ, row, &a)
					dot, mag = dotReference(t, typ, row, y)
				} else {
					var a Q8Blocks
					a.Quantize(x)
					for j := range y {
						y[j] = float64(a.D[j/32]) * float64(a.Qs[j])
					}
					got = DotQ8(typ, row, &a)
					dot, mag = dotReference(t, typ, row, y)
					if codecs[typ].hasMin {
						// Replace m·d_y·Σq by m·s.
						var q [QK]int8
						var fa, fb [maxSub]float32
						for b := range n / 32 {
							decode(typ, row[b*typ.BlockBytes():], &q, &fa, &fb)
							var sq float64
							for _, v := range a.Qs[32*b : 32*b+32] {
								sq += float64(v)
							}
							dot += float64(fb[0]) * (float64(a.S[b]) - float64(a.D[b])*sq)
						}
					}
					if typ == Q8_0 {
						// The unpacked rows (what a loaded model multiplies)
						// sum in ggml's AVX2 lane order, not block by block:
						// the same tolerance, not the same bits.
						qs, d := unpackQ8Test(row)
						if u := DotQ8Unpacked(qs, d, &a); math.Abs(float64(u)-dot) > 2e-6*mag+1e-30 {
							t.Errorf("Q8_0 unpacked n=%d round %d: %v, reference %v", n, round, u, dot)
						}
					}
				}
				if diff := math.Abs(float64(got) - dot); diff > 2e-6*mag+1e-30 {
					t.Errorf("%s n=%d round %d: %v, reference %v (|w·y| sum %v)", typ, n, round, got, dot, mag)
				}
				for i := range row {
					row[i] = byte(r.Uint32())
				}
				sanitizeScales(typ, row)
			}
		}
	}
}

func unpackQ8Test(row []byte) ([]int8, []float32) {
	var qs []int8
	var d []float32
	for b := 0; b < len(row); b += Q8_0BlockBytes {
		d = append(d, f16(row[b:]))
		for _, v := range row[b+2 : b+34] {
			qs = append(qs, int8(v))
		}
	}
	return qs, d
}

// TestIntegerDotsDoNotAllocate: they run in the token loop.
func TestIntegerDotsDoNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := randomRow(r, 512)
	var ak Q8K
	var ab Q8Blocks
	ak.Quantize(x)
	ab.Quantize(x)
	for _, typ := range quantTypes {
		sz, _ := typ.RowSize(512)
		row := make([]byte, sz)
		if err := Quantize(typ, row, x); err != nil {
			t.Fatal(err)
		}
		n := testing.AllocsPerRun(10, func() {
			if typ.BlockSize() == QK {
				ak.Quantize(x)
				DotQ8K(typ, row, &ak)
			} else {
				ab.Quantize(x)
				DotQ8(typ, row, &ab)
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations", typ, n)
		}
	}
}

// BenchmarkDotQ8 measures one 4096-value row's integer dot product per type
// (compare BenchmarkDot, the float32-activation path).
func BenchmarkDotQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	w, x := randomRow(r, 4096), randomRow(r, 4096)
	var ak Q8K
	var ab Q8Blocks
	ak.Quantize(x)
	ab.Quantize(x)
	for _, typ := range quantTypes {
		sz, _ := typ.RowSize(4096)
		row := make([]byte, sz)
		if err := Quantize(typ, row, w); err != nil {
			b.Fatal(err)
		}
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(sz))
			for b.Loop() {
				if typ.BlockSize() == QK {
					DotQ8K(typ, row, &ak)
				} else {
					DotQ8(typ, row, &ab)
				}
			}
		})
	}
}

// BenchmarkDotQ8x4 measures the prompt kernels: one 4096-value row against
// four activation vectors per call (bytes are the row's, once per call;
// compare BenchmarkDotQ8, which reads the row once per vector).
func BenchmarkDotQ8x4(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	w := randomRow(r, 4096)
	var ak [4]*Q8K
	var ab [4]*Q8Blocks
	for t := range 4 {
		x := randomRow(r, 4096)
		ak[t], ab[t] = new(Q8K), new(Q8Blocks)
		ak[t].Quantize(x)
		ab[t].Quantize(x)
	}
	var out [4]float32
	for _, typ := range []TensorType{Q4_K, Q6_K, Q8_0} {
		sz, _ := typ.RowSize(4096)
		row := make([]byte, sz)
		if err := Quantize(typ, row, w); err != nil {
			b.Fatal(err)
		}
		q, d := make([]int8, 4096), make([]float32, 4096/Q8_0BlockSize)
		if typ == Q8_0 {
			for i := range d {
				blk := row[i*Q8_0BlockBytes:]
				d[i] = Float16(uint16(blk[0]) | uint16(blk[1])<<8)
				for j := range Q8_0BlockSize {
					q[i*Q8_0BlockSize+j] = int8(blk[2+j])
				}
			}
		}
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(sz))
			for b.Loop() {
				if typ == Q8_0 {
					DotQ8Unpackedx4(q, d, &ab, &out)
				} else {
					DotQ8Kx4(typ, row, &ak, &out)
				}
			}
		})
	}
}
