package gguf

import (
	"math/rand/v2"
	"testing"
)

// randomQ4K fills a Q4_K kernel's inputs with arbitrary quants, activation
// quants in [-127, 127] (what Q8K.Quantize produces) and 6-bit scales.
func randomKernelInputs(r *rand.Rand, qs []byte, q8 []int8, sc []int16, scLo, scHi int) {
	for i := range qs {
		qs[i] = byte(r.Uint32())
	}
	for i := range q8 {
		q8[i] = int8(r.IntN(255) - 127)
	}
	for i := range sc {
		sc[i] = int16(scLo + r.IntN(scHi-scLo+1))
	}
}

// TestKernelsAVX2MatchGo: the assembly kernels give exactly the integers of
// their Go twins, on random inputs and on the extremes (every quant and
// activation at its largest magnitude, where int16 saturation would show).
func TestKernelsAVX2MatchGo(t *testing.T) {
	if !hasAVX2 {
		t.Skip("this CPU has no AVX2: the Go kernels are the only ones in use")
	}
	r := rand.New(rand.NewPCG(11, 12))
	qs := make([]byte, 192)
	q8 := make([]int8, 256)
	var sc4 [8]int16
	var sc6 [16]int16
	for i := range 2000 {
		randomKernelInputs(r, qs, q8, sc4[:], 0, 63)
		randomKernelInputs(r, qs[128:], nil, sc6[:], -128, 127)
		if i == 0 { // extremes
			for j := range qs {
				qs[j] = 0xff
			}
			for j := range q8 {
				q8[j] = -127
			}
			for j := range sc6 {
				sc6[j] = -128
			}
		}
		if a, g := q4kBlockAVX2(&qs[0], &q8[0], &sc4), q4kBlockGo(qs, q8, &sc4); a != g {
			t.Fatalf("Q4_K block %d: assembly %d, Go %d", i, a, g)
		}
		if a, g := q6kBlockAVX2(&qs[0], &qs[128], &q8[0], &sc6), q6kBlockGo(qs[:128], qs[128:], q8, &sc6); a != g {
			t.Fatalf("Q6_K block %d: assembly %d, Go %d", i, a, g)
		}
		w := make([]int8, 256)
		for j := range w {
			w[j] = int8(r.Uint32()) // a file's Q8_0 quants may be -128
		}
		if i == 0 {
			for j := range w {
				w[j] = -128
			}
		}
		var a, g [8]int32
		n := 1 + r.IntN(8)
		blockSumsAVX2(&a[0], &w[0], &q8[0], n)
		blockSumsGo(g[:n], w, q8)
		if a != g {
			t.Fatalf("Q8_0 block sums %d (n=%d): assembly %v, Go %v", i, n, a, g)
		}
	}
}

// FuzzKernelsAVX2MatchGo: the same property on fuzzed bytes.
func FuzzKernelsAVX2MatchGo(f *testing.F) {
	if !hasAVX2 {
		f.Skip("this CPU has no AVX2")
	}
	f.Add(make([]byte, 192+256+32), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, seed uint64) {
		if len(b) < 192+256+32 {
			return
		}
		qs := b[:192]
		q8 := make([]int8, 256)
		for i, v := range b[192 : 192+256] {
			q8[i] = max(int8(v), -127)
		}
		var sc4 [8]int16
		var sc6 [16]int16
		for i := range sc4 {
			sc4[i] = int16(b[448+i] & 63)
		}
		for i := range sc6 {
			sc6[i] = int16(int8(b[456+i]))
		}
		if a, g := q4kBlockAVX2(&qs[0], &q8[0], &sc4), q4kBlockGo(qs, q8, &sc4); a != g {
			t.Fatalf("Q4_K: assembly %d, Go %d", a, g)
		}
		if a, g := q6kBlockAVX2(&qs[0], &qs[128], &q8[0], &sc6), q6kBlockGo(qs[:128], qs[128:], q8, &sc6); a != g {
			t.Fatalf("Q6_K: assembly %d, Go %d", a, g)
		}
		w := make([]int8, 256)
		for i, v := range b[:256] {
			w[i] = int8(v)
		}
		n := 1 + int(seed%8)
		var a, g [8]int32
		blockSumsAVX2(&a[0], &w[0], &q8[0], n)
		blockSumsGo(g[:n], w, q8)
		if a != g {
			t.Fatalf("Q8_0 block sums: assembly %v, Go %v", a, g)
		}
	})
}
