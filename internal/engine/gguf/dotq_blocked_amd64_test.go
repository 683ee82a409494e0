package gguf

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBlockedKernelsMatchGo: the two-row, four-vector prompt kernels give
// each (row, vector) exactly the one-vector Go twin's result, on random
// rows and activations of 1 to 5 super-blocks (Q4_K, Q6_K) or 1 to 11
// blocks (Q8_0: both the four-block steps and the one-block remainder),
// and on the extremes (every bit set: 4-bit quants 15, scales and mins
// 63, 6-bit quants 63 with scales -1; every Q6_K scale -128; Q8_0 weights
// -128).
func TestBlockedKernelsMatchGo(t *testing.T) {
	if !hasAVX2 {
		t.Skip("this CPU has no AVX2: the Go kernels are the only ones in use")
	}
	t.Run("Q4_K", func(t *testing.T) { testKBlocked(t, Q4_K) })
	t.Run("Q6_K", func(t *testing.T) { testKBlocked(t, Q6_K) })
	t.Run("Q8_0", testQ80Blocked)
}

func testKBlocked(t *testing.T, typ TensorType) {
	bb := typ.BlockBytes()
	r := rand.New(rand.NewPCG(1, 2))
	for it := range 300 {
		n := 1 + r.IntN(5)
		fill := func(int) byte { return byte(r.Uint32()) }
		if it == 0 {
			fill = func(int) byte { return 0xff }
		}
		row0, q8, bs := kernelInputs(r, n, fill)
		row1, _, _ := kernelInputs(r, n, fill)
		r0, r1 := row0[:bb*n], row1[:bb*n]
		sanitizeScales(typ, r0)
		sanitizeScales(typ, r1)
		if it == 1 && typ == Q6_K {
			for i := range n { // every scale -128
				for s := range 16 {
					r0[210*i+192+s], r1[210*i+192+s] = 0x80, 0x80
				}
			}
		}
		var four [4]*Q8K
		for k := range four {
			v := &Q8K{D: make([]float32, n), Qs: make([]int8, len(q8)), Bsums: make([]int16, len(bs))}
			for i := range v.Qs {
				v.Qs[i] = q8[(i+97*k)%len(q8)]
				v.Bsums[i/16] += int16(v.Qs[i])
			}
			for i := range v.D {
				v.D[i] = float32(i+1+k) / 1024 * float32(1+int(row0[i])%7)
			}
			four[k] = v
		}
		goDot, kernel := dotQ4KQ8KGo, dotQ4KQ8K2x4
		if typ == Q6_K {
			goDot, kernel = dotQ6KQ8KGo, dotQ6KQ8K2x4
		}
		var got [8]float32
		var p Q8Kx4
		p.Set(&four, QK*n)
		if !kernel(r0, r1, &p, &got) {
			t.Fatal("no kernel")
		}
		for k, v := range four {
			for ri, row := range [][]byte{r0, r1} {
				if g := goDot(row, v); math.Float32bits(g) != math.Float32bits(got[4*ri+k]) {
					t.Fatalf("%d blocks, row %d, vector %d: assembly %v, Go %v", n, ri, k, got[4*ri+k], g)
				}
			}
		}
	}
}

// BenchmarkDotQ8x2x4 compares, for two 4096-value rows and four
// activation vectors (ns per op: eight dot products), the one-token
// kernels generation uses (x1-per-pair), the four-token kernels called
// once per row (x4-per-row) and the two-row kernels (2x4).
func BenchmarkDotQ8x2x4(b *testing.B) {
	b.Run("Q4_K", func(b *testing.B) { benchKBlocked(b, Q4_K) })
	b.Run("Q6_K", func(b *testing.B) { benchKBlocked(b, Q6_K) })
	b.Run("Q8_0", benchQ80Blocked)
}

func benchKBlocked(b *testing.B, typ TensorType) {
	r := rand.New(rand.NewPCG(5, 6))
	var ak [4]*Q8K
	for t := range 4 {
		ak[t] = new(Q8K)
		ak[t].Quantize(randomRow(r, 4096))
	}
	sz, _ := typ.RowSize(4096)
	row0, row1 := make([]byte, sz), make([]byte, sz)
	_ = Quantize(typ, row0, randomRow(r, 4096))
	_ = Quantize(typ, row1, randomRow(r, 4096))
	var o4 [4]float32
	var o8 [8]float32
	b.Run("x1-per-pair", func(b *testing.B) {
		for b.Loop() {
			for _, v := range ak {
				o4[0] = DotQ8K(typ, row0, v)
				o4[1] = DotQ8K(typ, row1, v)
			}
		}
	})
	b.Run("x4-per-row", func(b *testing.B) {
		for b.Loop() {
			DotQ8Kx4(typ, row0, &ak, &o4)
			DotQ8Kx4(typ, row1, &ak, &o4)
		}
	})
	b.Run("2x4", func(b *testing.B) {
		var p Q8Kx4
		p.Set(&ak, 4096)
		for b.Loop() {
			DotQ8K2x4(typ, row0, row1, &p, &o8)
		}
	})
}

func testQ80Blocked(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for it := range 300 {
		nb := 1 + r.IntN(11)
		mk := func() ([]int8, []float32) {
			w, d := make([]int8, 32*nb), make([]float32, nb)
			for i := range w {
				w[i] = int8(r.Uint32())
				if it == 0 {
					w[i] = -128
				}
			}
			for i := range d {
				d[i] = float32(r.NormFloat64())
			}
			return w, d
		}
		w0, d0 := mk()
		w1, d1 := mk()
		var four [4]*Q8Blocks
		for k := range four {
			v := &Q8Blocks{D: make([]float32, nb), Qs: make([]int8, 32*nb)}
			for i := range v.Qs {
				v.Qs[i] = int8(r.IntN(255) - 127)
			}
			for i := range v.D {
				v.D[i] = float32(r.NormFloat64())
			}
			four[k] = v
		}
		var got [8]float32
		var p Q8Blocksx4
		p.Set(&four, 32*nb)
		if !dotQ80x2x4(w0, w1, d0, d1, &p, &got) {
			t.Fatal("no kernel")
		}
		for k, v := range four {
			if g := dotQ80Go(w0, d0, v); math.Float32bits(g) != math.Float32bits(got[k]) {
				t.Fatalf("nb=%d row 0 tok %d: asm %v go %v", nb, k, got[k], g)
			}
			if g := dotQ80Go(w1, d1, v); math.Float32bits(g) != math.Float32bits(got[4+k]) {
				t.Fatalf("nb=%d row 1 tok %d: asm %v go %v", nb, k, got[4+k], g)
			}
		}
	}
}

func benchQ80Blocked(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	var ab [4]*Q8Blocks
	for t := range 4 {
		ab[t] = new(Q8Blocks)
		ab[t].Quantize(randomRow(r, 4096))
	}
	w0, w1 := make([]int8, 4096), make([]int8, 4096)
	d0, d1 := make([]float32, 128), make([]float32, 128)
	for i := range w0 {
		w0[i], w1[i] = int8(r.Uint32()), int8(r.Uint32())
	}
	for i := range d0 {
		d0[i], d1[i] = 0.01, 0.02
	}
	var o4 [4]float32
	var o8 [8]float32
	b.Run("x1-per-pair", func(b *testing.B) {
		for b.Loop() {
			for _, v := range ab {
				o4[0] = DotQ8Unpacked(w0, d0, v)
				o4[1] = DotQ8Unpacked(w1, d1, v)
			}
		}
	})
	b.Run("x4-per-row", func(b *testing.B) {
		for b.Loop() {
			DotQ8Unpackedx4(w0, d0, &ab, &o4)
			DotQ8Unpackedx4(w1, d1, &ab, &o4)
		}
	})
	b.Run("2x4", func(b *testing.B) {
		var p Q8Blocksx4
		p.Set(&ab, 4096)
		for b.Loop() {
			DotQ8Unpacked2x4(w0, w1, d0, d1, &p, &o8)
		}
	})
}

// FuzzBlockedKernelsMatchGo: the two-row K-quant kernels against the Go
// twins on fuzzed row bytes (any quants and scales) and activations.
func FuzzBlockedKernelsMatchGo(f *testing.F) {
	if !hasAVX2 {
		f.Skip("this CPU has no AVX2")
	}
	f.Add(make([]byte, 64), uint8(1))
	f.Add([]byte{0xff}, uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, nb uint8) {
		n := 1 + int(nb%2)
		if len(in) == 0 {
			return
		}
		// The fuzzed bytes, repeated (and varied by position) to the length
		// two rows and four vectors need.
		b := make([]byte, n*(2*210+4*QK))
		for i := range b {
			b[i] = in[i%len(in)] ^ byte(i/len(in)*151)
		}
		var four [4]*Q8K
		src := b[2*210*n:]
		for k := range four {
			v := &Q8K{D: make([]float32, n), Qs: make([]int8, QK*n), Bsums: make([]int16, 16*n)}
			for i := range v.Qs {
				v.Qs[i] = max(int8(src[k*QK*n+i]), -127)
				v.Bsums[i/16] += int16(v.Qs[i])
			}
			for i := range v.D {
				v.D[i] = float32(int(src[k*QK*n+i])-128) / 512
			}
			four[k] = v
		}
		for _, typ := range []TensorType{Q4_K, Q6_K} {
			bb := typ.BlockBytes()
			r0 := slices.Clone(b[:bb*n])
			r1 := slices.Clone(b[210*n : 210*n+bb*n])
			sanitizeScales(typ, r0)
			sanitizeScales(typ, r1)
			var got [8]float32
			var p Q8Kx4
			p.Set(&four, QK*n)
			DotQ8K2x4(typ, r0, r1, &p, &got)
			for k, v := range four {
				for ri, row := range [][]byte{r0, r1} {
					if g := DotQ8K(typ, row, v); math.Float32bits(g) != math.Float32bits(got[4*ri+k]) {
						t.Fatalf("%s, %d blocks, row %d, vector %d: two-row kernel %v, one-vector %v", typ, n, ri, k, got[4*ri+k], g)
					}
				}
			}
		}
	})
}

// TestTwoRowEntryPointsMatchOneVector: DotQ8K2x4 and DotQ8Unpacked2x4
// give every (row, vector) the one-vector result, bit for bit, with the
// AVX2 kernels and with the Go path CPUs without AVX2 take (hasAVX2
// switched off), for the types with two-row kernels and one without
// (Q5_K, through DotQ8Kx4).
func TestTwoRowEntryPointsMatchOneVector(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const cols = 2 * QK
	var k [4]*Q8K
	var q [4]*Q8Blocks
	for i := range 4 {
		x := randomRow(r, cols)
		k[i], q[i] = new(Q8K), new(Q8Blocks)
		k[i].Quantize(x)
		q[i].Quantize(x)
	}
	defer func(v bool) { hasAVX2 = v }(hasAVX2)
	for _, avx := range []bool{true, false} {
		hasAVX2 = avx
		var k4 Q8Kx4
		k4.Set(&k, cols)
		for _, typ := range []TensorType{Q4_K, Q6_K, Q5_K} {
			usz, _ := typ.RowSize(cols)
			sz := int(usz)
			rows := make([]byte, 2*sz)
			if err := Quantize(typ, rows, append(randomRow(r, cols), randomRow(r, cols)...)); err != nil {
				t.Fatal(err)
			}
			var got [8]float32
			DotQ8K2x4(typ, rows[:sz], rows[sz:], &k4, &got)
			for v := range 4 {
				for ri := range 2 {
					if w := DotQ8K(typ, rows[ri*sz:(ri+1)*sz], k[v]); math.Float32bits(w) != math.Float32bits(got[4*ri+v]) {
						t.Errorf("AVX2 %v, %s, row %d, vector %d: %v, one-vector %v", avx, typ, ri, v, got[4*ri+v], w)
					}
				}
			}
		}
		var b4 Q8Blocksx4
		b4.Set(&q, cols)
		w := make([]int8, 2*cols)
		wd := make([]float32, 2*cols/32)
		for i := range w {
			w[i] = int8(r.Uint32())
		}
		for i := range wd {
			wd[i] = float32(r.NormFloat64()) / 64
		}
		var got [8]float32
		n := cols / 32
		DotQ8Unpacked2x4(w[:cols], w[cols:], wd[:n], wd[n:], &b4, &got)
		for v := range 4 {
			for ri := range 2 {
				if x := DotQ8Unpacked(w[ri*cols:(ri+1)*cols], wd[ri*n:(ri+1)*n], q[v]); math.Float32bits(x) != math.Float32bits(got[4*ri+v]) {
					t.Errorf("AVX2 %v, Q8_0, row %d, vector %d: %v, one-vector %v", avx, ri, v, got[4*ri+v], x)
				}
			}
		}
	}
}
