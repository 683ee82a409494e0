package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttentionAVX2MatchesGo: the attention kernels give exactly the Go
// twins' values (attnMixGo, attnScores), for head sizes that take the
// 32-wide and 8-wide passes and key counts that take the four-key pass and
// the remainder, so that a prefill (which scores eight tokens at once)
// reproduces generation bit for bit whatever the CPU.
func TestAttentionAVX2MatchesGo(t *testing.T) {
	if !hasAVX2 {
		t.Skip("this CPU has no AVX2: the Go twins are the only ones in use")
	}
	r := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	for _, hs := range []int{8, 16, 32, 40, 64, 128} {
		for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 31, 257} {
			stride := hs * (1 + r.IntN(3))
			v := rnd((n-1)*stride + hs)
			att := rnd(n)
			got, want := make([]float32, hs), make([]float32, hs)
			attnMix(got, att, v, stride)
			attnMixGo(want, att, v, stride)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("attnMix hs %d, %d keys, element %d: AVX2 %v, Go %v", hs, n, i, got[i], want[i])
				}
			}
			qs := make([][]float32, 8)
			qT := make([]float32, 8*hs)
			for b := range qs {
				qs[b] = rnd(hs)
				for j, x := range qs[b] {
					qT[j*8+b] = x
				}
			}
			scale := sqrtf(float32(hs))
			scores := make([]float32, 8*n)
			if !attnScores8(scores, qT, v, stride, n, hs, scale) {
				t.Fatal("no eight-query kernel with AVX2")
			}
			for b, q := range qs {
				one := make([]float32, n)
				attnScores(one, q, v, stride, scale)
				for p, w := range one {
					if g := scores[p*8+b]; math.Float32bits(g) != math.Float32bits(w) {
						t.Fatalf("attnScores8 hs %d, %d keys, query %d, key %d: AVX2 %v, Go %v", hs, n, b, p, g, w)
					}
				}
			}
		}
	}
}
