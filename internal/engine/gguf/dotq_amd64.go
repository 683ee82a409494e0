package gguf

import "golang.org/x/sys/cpu"

// hasAVX2 selects the assembly kernels (AVX2 with the OS saving the YMM
// registers, as golang.org/x/sys/cpu reports it); other CPUs use the Go
// twins, which compute the same integers (TestKernelsAVX2MatchGo).
var hasAVX2 = cpu.X86.HasAVX2

//go:noescape
func q4kBlockAVX2(qs *byte, q8 *int8, sc *[8]int16) int32

//go:noescape
func q6kBlockAVX2(ql, qh *byte, q8 *int8, sc *[16]int16) int32

//go:noescape
func blockSumsAVX2(out *int32, w, x *int8, n int)

func q4kBlock(qs []byte, q8 []int8, sc *[8]int16) int32 {
	if hasAVX2 {
		qs, q8 = qs[:128], q8[:256] // bounds for the assembly
		return q4kBlockAVX2(&qs[0], &q8[0], sc)
	}
	return q4kBlockGo(qs, q8, sc)
}

func q6kBlock(ql, qh []byte, q8 []int8, sc *[16]int16) int32 {
	if hasAVX2 {
		ql, qh, q8 = ql[:128], qh[:64], q8[:256]
		return q6kBlockAVX2(&ql[0], &qh[0], &q8[0], sc)
	}
	return q6kBlockGo(ql, qh, q8, sc)
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
