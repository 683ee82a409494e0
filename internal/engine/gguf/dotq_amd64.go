package gguf

import "golang.org/x/sys/cpu"

// hasAVX2 selects the assembly kernels (AVX2 with the OS saving the YMM
// registers, as golang.org/x/sys/cpu reports it); other CPUs use the Go
// twins, which compute the same integers (TestKernelsAVX2MatchGo).
var hasAVX2 = cpu.X86.HasAVX2

//go:noescape
func q4kSumsAVX2(out *int32, row *byte, q8 *int8, bsums *int16, n int)

//go:noescape
func q6kSumsAVX2(out *int32, row *byte, q8 *int8, bsums *int16, n int)

//go:noescape
func blockSumsAVX2(out *int32, w, x *int8, n int)

func q4kSums(out []int32, row []byte, q8 []int8, bsums []int16) {
	n := len(out) / 2
	if hasAVX2 && n > 0 {
		row, q8, bsums = row[:144*n], q8[:QK*n], bsums[:16*n] // bounds for the assembly
		q4kSumsAVX2(&out[0], &row[0], &q8[0], &bsums[0], n)
		return
	}
	q4kSumsGo(out, row, q8, bsums)
}

func q6kSums(out []int32, row []byte, q8 []int8, bsums []int16) {
	n := len(out)
	if hasAVX2 && n > 0 {
		row, q8, bsums = row[:210*n], q8[:QK*n], bsums[:16*n]
		q6kSumsAVX2(&out[0], &row[0], &q8[0], &bsums[0], n)
		return
	}
	q6kSumsGo(out, row, q8, bsums)
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
