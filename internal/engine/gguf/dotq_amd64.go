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

//go:noescape
func q80DotAVX2(w *int8, wd *float32, x *int8, xd *float32, nb int) float32

// q80x4 holds four Q8_0 activation vectors' quants and scales for
// q80Dot4AVX2.
type q80x4 struct {
	x [4]*int8
	d [4]*float32
}

//go:noescape
func q80Dot4AVX2(w *int8, wd *float32, nb int, a *q80x4, out *[4]float32)

//go:noescape
func q6kDot4AVX2(row *byte, n int, a *q8kx4, out *[4]float32)

func dotQ80(w []int8, wd []float32, a *Q8Blocks) float32 {
	nb := len(wd)
	if hasAVX2 && nb > 0 {
		w, x, xd := w[:32*nb], a.Qs[:32*nb], a.D[:nb] // bounds for the assembly
		return q80DotAVX2(&w[0], &wd[0], &x[0], &xd[0], nb)
	}
	return dotQ80Go(w, wd, a)
}

func dotQ80x4(w []int8, wd []float32, a *[4]*Q8Blocks, out *[4]float32) {
	nb := len(wd)
	if !hasAVX2 || nb == 0 {
		for t, v := range a {
			out[t] = dotQ80Go(w, wd, v)
		}
		return
	}
	w = w[:32*nb]
	var p q80x4
	for t, v := range a {
		x, xd := v.Qs[:32*nb], v.D[:nb] // bounds for the assembly
		p.x[t], p.d[t] = &x[0], &xd[0]
	}
	q80Dot4AVX2(&w[0], &wd[0], nb, &p, out)
}

// q8kx4 holds four activation vectors' arrays for q4kDot4AVX2.
type q8kx4 struct {
	q8 [4]*int8
	bs [4]*int16
	d  [4]*float32
}

//go:noescape
func q4kDot4AVX2(row *byte, n int, a *q8kx4, out *[4]float32)

// dotQ6KQ8Kx4 is dotQ4KQ8Kx4 for Q6_K.
func dotQ6KQ8Kx4(row []byte, a *[4]*Q8K, out *[4]float32) bool {
	n := len(row) / 210
	if !hasAVX2 || n == 0 {
		return false
	}
	var p q8kx4
	for t, v := range a {
		q8, bs, d := v.Qs[:QK*n], v.Bsums[:16*n], v.D[:n] // bounds for the assembly
		p.q8[t], p.bs[t], p.d[t] = &q8[0], &bs[0], &d[0]
	}
	*out = [4]float32{}
	q6kDot4AVX2(&row[0], n, &p, out)
	return true
}

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

//go:noescape
func q4kDot2x4AVX2(rows *[2]*byte, n int, a *q8kx4, out *[8]float32)

// dotQ4KQ8K2x4 sets out[4r+t] to dotQ4KQ8K(rows[r], a[t]) for two rows and
// four vectors; false when there is no kernel.
func dotQ4KQ8K2x4(r0, r1 []byte, a *Q8Kx4, out *[8]float32) bool {
	n := a.n
	if !hasAVX2 || n == 0 || len(r0) != 144*n || len(r1) != 144*n {
		return false
	}
	rows := [2]*byte{&r0[0], &r1[0]}
	*out = [8]float32{}
	q4kDot2x4AVX2(&rows, n, &a.p, out)
	return true
}

// q80rows2 holds two Q8_0 rows' quants and scales for q80Dot2x4AVX2.
type q80rows2 struct {
	w [2]*int8
	d [2]*float32
}

//go:noescape
func q80Dot2x4AVX2(r *q80rows2, nb int, a *q80x4, out *[8]float32)

// dotQ80x2x4 sets out[4r+t] to dotQ80(w_r, wd_r, a[t]) for two rows and
// four vectors; false when there is no kernel.
func dotQ80x2x4(w0, w1 []int8, wd0, wd1 []float32, a *Q8Blocksx4, out *[8]float32) bool {
	nb := a.nb
	if !hasAVX2 || nb == 0 || len(wd0) != nb || len(wd1) != nb || len(w0) != 32*nb || len(w1) != 32*nb {
		return false
	}
	r := q80rows2{w: [2]*int8{&w0[0], &w1[0]}, d: [2]*float32{&wd0[0], &wd1[0]}}
	q80Dot2x4AVX2(&r, nb, &a.p, out)
	return true
}

//go:noescape
func q6kDot2x4AVX2(rows *[2]*byte, n int, a *q8kx4, out *[8]float32)

// dotQ6KQ8K2x4 is dotQ4KQ8K2x4 for Q6_K.
func dotQ6KQ8K2x4(r0, r1 []byte, a *Q8Kx4, out *[8]float32) bool {
	n := a.n
	if !hasAVX2 || n == 0 || len(r0) != 210*n || len(r1) != 210*n {
		return false
	}
	rows := [2]*byte{&r0[0], &r1[0]}
	*out = [8]float32{}
	q6kDot2x4AVX2(&rows, n, &a.p, out)
	return true
}
