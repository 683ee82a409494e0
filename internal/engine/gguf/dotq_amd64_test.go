package gguf

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// kernelInputs makes n super-blocks of arbitrary row bytes (every bit
// pattern of quants and scales; the float16 scales play no part in the
// integer kernels) and Q8_K activation quants in [-127, 127] (what
// Q8K.Quantize produces) with their 16-value sums.
func kernelInputs(r *rand.Rand, n int, fill func(i int) byte) (row []byte, q8 []int8, bsums []int16) {
	row = make([]byte, 210*n)
	for i := range row {
		row[i] = fill(i)
	}
	q8 = make([]int8, QK*n)
	bsums = make([]int16, 16*n)
	for i := range q8 {
		q8[i] = int8(r.IntN(255) - 127)
		if fill(0) == 0xff && r.IntN(2) == 0 {
			q8[i] = -127 // extremes: largest products, int16 saturation would show
		}
		bsums[i/16] += int16(q8[i])
	}
	return row, q8, bsums
}

// checkKernels compares the assembly kernels with their Go twins on one
// input: the same float32 result, bit for bit (the same integers, then the
// same float32 operations in the same order).
func checkKernels(t *testing.T, row []byte, q8 []int8, bsums []int16, n int) {
	t.Helper()
	a := &Q8K{D: make([]float32, n), Qs: q8, Bsums: bsums}
	for i := range a.D {
		a.D[i] = float32(i+1) / 1024 * float32(1+int(row[i])%7)
	}
	r4 := slices.Clone(row[:144*n])
	sanitizeScales(Q4_K, r4)
	if g, v := dotQ4KQ8KGo(r4, a), q4kDotAVX2(&r4[0], &q8[0], &bsums[0], &a.D[0], n); math.Float32bits(g) != math.Float32bits(v) {
		t.Fatalf("Q4_K, %d blocks: assembly %v, Go %v", n, v, g)
	}
	// Four vectors at once (the prompt kernel): each equal to the
	// one-vector Go twin, bit for bit.
	var four [4]*Q8K
	for t := range four {
		v := &Q8K{D: make([]float32, n), Qs: make([]int8, len(q8)), Bsums: make([]int16, len(bsums))}
		for i := range v.Qs {
			v.Qs[i] = q8[(i+97*t)%len(q8)]
		}
		for i := range v.Bsums {
			v.Bsums[i] = bsums[(i+5*t)%len(bsums)]
		}
		for i := range v.D {
			v.D[i] = a.D[i] * float32(t+1) / 3
		}
		four[t] = v
	}
	var got [4]float32
	if !dotQ4KQ8Kx4(r4, &four, &got) {
		t.Fatal("no four-vector kernel with AVX2")
	}
	for i, v := range four {
		if g := dotQ4KQ8KGo(r4, v); math.Float32bits(g) != math.Float32bits(got[i]) {
			t.Fatalf("Q4_K ×4, %d blocks, vector %d: assembly %v, Go %v", n, i, got[i], g)
		}
	}
	r6 := slices.Clone(row[:210*n])
	sanitizeScales(Q6_K, r6)
	if g, v := dotQ6KQ8KGo(r6, a), q6kDotAVX2(&r6[0], &q8[0], &bsums[0], &a.D[0], n); math.Float32bits(g) != math.Float32bits(v) {
		t.Fatalf("Q6_K, %d blocks: assembly %v, Go %v", n, v, g)
	}
	if !dotQ6KQ8Kx4(r6, &four, &got) {
		t.Fatal("no four-vector Q6_K kernel with AVX2")
	}
	for i, v := range four {
		if g := dotQ6KQ8KGo(r6, v); math.Float32bits(g) != math.Float32bits(got[i]) {
			t.Fatalf("Q6_K ×4, %d blocks, vector %d: assembly %v, Go %v", n, i, got[i], g)
		}
	}
	checkQ80(t, row, q8, a.D)
}

// checkQ80 compares the Q8_0 kernels, one and four vectors, with their Go
// twin: weights from row's bytes (a file's Q8_0 quants may be -128),
// activations from q8 (never below -127, as Q8Blocks.Quantize makes them).
func checkQ80(t *testing.T, row []byte, q8 []int8, ds []float32) {
	t.Helper()
	nb := len(q8) / 32
	w := make([]int8, len(q8))
	wd := make([]float32, nb)
	for i := range w {
		w[i] = int8(row[i%len(row)])
	}
	for b := range wd {
		wd[b] = float32(int(row[(7*b)%len(row)])-128) / 4096
	}
	var four [4]*Q8Blocks
	for t := range four {
		v := &Q8Blocks{D: make([]float32, nb), Qs: make([]int8, len(q8))}
		for i := range v.Qs {
			v.Qs[i] = q8[(i+61*t)%len(q8)]
		}
		for b := range v.D {
			v.D[b] = ds[b%len(ds)] * float32(b+t+1) / 5
		}
		four[t] = v
	}
	// Every row length from one block up, so that the four-block steps of
	// the four-vector kernel and its one-block remainder are both taken.
	for m := 1; m < min(nb, 10); m++ {
		var got [4]float32
		dotQ80x4(w[:32*m], wd[:m], &four, &got)
		for i, v := range four {
			if g := dotQ80Go(w[:32*m], wd[:m], v); math.Float32bits(g) != math.Float32bits(got[i]) {
				t.Fatalf("Q8_0 ×4, %d of %d blocks, vector %d: assembly %v, Go %v", m, nb, i, got[i], g)
			}
		}
	}
	var got [4]float32
	dotQ80x4(w, wd, &four, &got)
	for i, v := range four {
		g := dotQ80Go(w, wd, v)
		if a := q80DotAVX2(&w[0], &wd[0], &v.Qs[0], &v.D[0], nb); math.Float32bits(g) != math.Float32bits(a) {
			t.Fatalf("Q8_0, %d blocks: assembly %v, Go %v", nb, a, g)
		}
		if math.Float32bits(g) != math.Float32bits(got[i]) {
			t.Fatalf("Q8_0 ×4, %d blocks, vector %d: assembly %v, Go %v", nb, i, got[i], g)
		}
	}
}

// TestKernelsAVX2MatchGo: the assembly kernels give exactly the results of
// their Go twins, on random inputs and on the extremes (all bits set: 4-
// and 6-bit quants at their largest, Q6_K scales -1 and Q4_K scales and
// mins 63; every Q6_K scale -128; Q8_0 quants -128).
func TestKernelsAVX2MatchGo(t *testing.T) {
	if !hasAVX2 {
		t.Skip("this CPU has no AVX2: the Go kernels are the only ones in use")
	}
	r := rand.New(rand.NewPCG(11, 12))
	row, q8, bs := kernelInputs(r, 3, func(int) byte { return 0xff })
	checkKernels(t, row, q8, bs, 3)
	row, q8, bs = kernelInputs(r, 2, func(int) byte { return 0xff })
	for i := range 2 {
		for s := range 16 {
			row[210*i+192+s] = 0x80
		}
	}
	checkKernels(t, row, q8, bs, 2)
	for range 500 {
		n := 1 + r.IntN(6)
		row, q8, bs := kernelInputs(r, n, func(int) byte { return byte(r.Uint32()) })
		checkKernels(t, row, q8, bs, n)
	}
}

// FuzzKernelsAVX2MatchGo: the same property on fuzzed bytes.
func FuzzKernelsAVX2MatchGo(f *testing.F) {
	if !hasAVX2 {
		f.Skip("this CPU has no AVX2")
	}
	f.Add(make([]byte, 210+256), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, nb uint8) {
		n := 1 + int(nb%3)
		if len(b) < n*(210+256) {
			return
		}
		row := b[:210*n]
		q8 := make([]int8, QK*n)
		bsums := make([]int16, 16*n)
		for i, v := range b[210*n : 210*n+QK*n] {
			q8[i] = max(int8(v), -127)
			bsums[i/16] += int16(q8[i])
		}
		checkKernels(t, row, q8, bsums, n)
	})
}

// BenchmarkDotQ8Go measures the Go twins of the assembly kernels (what CPUs
// without AVX2 run) on the rows of BenchmarkDotQ8.
func BenchmarkDotQ8Go(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	w, x := randomRow(r, 4096), randomRow(r, 4096)
	var ak Q8K
	ak.Quantize(x)
	for _, typ := range []TensorType{Q4_K, Q6_K} {
		sz, _ := typ.RowSize(4096)
		row := make([]byte, sz)
		if err := Quantize(typ, row, w); err != nil {
			b.Fatal(err)
		}
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(sz))
			for b.Loop() {
				if typ == Q4_K {
					dotQ4KQ8KGo(row, &ak)
				} else {
					dotQ6KQ8KGo(row, &ak)
				}
			}
		})
	}
}
