//go:build !amd64

package gguf

// hasAVX2 is false off amd64: the Go kernels run.
const hasAVX2 = false

func dotQ4KQ8K(row []byte, a *Q8K) float32 { return dotQ4KQ8KGo(row, a) }

func dotQ6KQ8K(row []byte, a *Q8K) float32 { return dotQ6KQ8KGo(row, a) }

func blockSums(out []int32, w, x []int8) { blockSumsGo(out, w, x) }

func dotQ4KQ8Kx4(row []byte, a *[4]*Q8K, out *[4]float32) bool { return false }
