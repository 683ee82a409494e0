package gguf

import "golang.org/x/sys/cpu"

// hasAVX2 selects the assembly kernels (AVX2 with the OS saving the YMM
// registers, and F16C, as golang.org/x/sys/cpu reports them); other CPUs
// use the Go twins, which compute the same values (TestKernelsAVX2MatchGo).
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasF16C

//go:noescape
func q4kDotAVX2(row *byte, q8 *int8, bsums *int16, d *float32, n int) float32

//go:noescape
func q6kDotAVX2(row *byte, q8 *int8, bsums *int16, d *float32, n int) float32

//go:noescape
func blockSumsAVX2(out *int32, w, x *int8, n int)

func dotQ4KQ8K(row []byte, a *Q8K) float32 {
	n := len(row) / 144
	if hasAVX2 && n > 0 {
		q8, bs, d := a.Qs[:QK*n], a.Bsums[:16*n], a.D[:n] // bounds for the assembly
		return q4kDotAVX2(&row[0], &q8[0], &bs[0], &d[0], n)
	}
	return dotQ4KQ8KGo(row, a)
}

func dotQ6KQ8K(row []byte, a *Q8K) float32 {
	n := len(row) / 210
	if hasAVX2 && n > 0 {
		q8, bs, d := a.Qs[:QK*n], a.Bsums[:16*n], a.D[:n]
		return q6kDotAVX2(&row[0], &q8[0], &bs[0], &d[0], n)
	}
	return dotQ6KQ8KGo(row, a)
}

func blockSums(out []int32, w, x []int8) {
	if hasAVX2 && len(out) > 0 {
		n := len(out)
		w, x = w[:32*n], x[:32*n]
		blockSumsAVX2(&out[0], &w[0], &x[0], n)
		return
	}
	blockSumsGo(out, w, x)
}

// q8kx4 holds four activation vectors' arrays for q4kDot4AVX2.
type q8kx4 struct {
	q8 [4]*int8
	bs [4]*int16
	d  [4]*float32
}

//go:noescape
func q4kDot4AVX2(row *byte, n int, a *q8kx4, out *[4]float32)

// dotQ4KQ8Kx4 sets out[t] to dotQ4KQ8K(row, a[t]) with the assembly kernel
// that reads the row once for the four vectors; false when there is none.
func dotQ4KQ8Kx4(row []byte, a *[4]*Q8K, out *[4]float32) bool {
	n := len(row) / 144
	if !hasAVX2 || n == 0 {
		return false
	}
	var p q8kx4
	for t, v := range a {
		q8, bs, d := v.Qs[:QK*n], v.Bsums[:16*n], v.D[:n] // bounds for the assembly
		p.q8[t], p.bs[t], p.d[t] = &q8[0], &bs[0], &d[0]
	}
	*out = [4]float32{}
	q4kDot4AVX2(&row[0], n, &p, out)
	return true
}
