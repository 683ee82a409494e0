//go:build !amd64

package engine

// hasAVX2 is false here: there are no assembly kernels.
var hasAVX2 = false

// attnMix is attnMixGo where there are no assembly kernels.
func attnMix(xb, att, v []float32, stride int) { attnMixGo(xb, att, v, stride) }

// attnScores8 has no kernel here: the caller scores query by query.
func attnScores8(_, _, _ []float32, _, _, _ int, _ float32) bool { return false }
