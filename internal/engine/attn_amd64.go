package engine

import "golang.org/x/sys/cpu"

// hasAVX2 selects the assembly attention kernels; other CPUs run the Go
// twins, which compute the same values (TestAttentionAVX2MatchesGo).
var hasAVX2 = cpu.X86.HasAVX2

//go:noescape
func attnMixAVX2(xb, att, v *float32, stride, n, hs int)

//go:noescape
func attnScores8AVX2(att, qT, k *float32, stride, n, hs int, scale float32)

// attnMix sets xb = Σ_t att[t]·v_t (v_t at v[t·stride:]), each element
// summed over t in order: attnMixGo's values, by AVX2 when the head size
// allows (a multiple of 8).
func attnMix(xb, att, v []float32, stride int) {
	hs, n := len(xb), len(att)
	if !hasAVX2 || hs%8 != 0 || hs == 0 || n == 0 {
		attnMixGo(xb, att, v, stride)
		return
	}
	_ = v[(n-1)*stride+hs-1] // the assembly reads v up to here
	attnMixAVX2(&xb[0], &att[0], &v[0], stride, n, hs)
}

// attnScores8 sets att[t·8+b] to query b's scaled score against key t for
// t < n, the eight queries transposed in qT (qT[j·8+b] = q_b[j], len
// 8·hs): for each b, the values attnScores computes for q_b. False when
// there is no AVX2 kernel (the caller then scores query by query).
func attnScores8(att, qT, k []float32, stride, n, hs int, scale float32) bool {
	if !hasAVX2 || n == 0 || hs == 0 {
		return false
	}
	_, _ = att[8*n-1], qT[8*hs-1]
	_ = k[(n-1)*stride+hs-1]
	attnScores8AVX2(&att[0], &qT[0], &k[0], stride, n, hs, scale)
	return true
}
