//go:build !amd64

package gguf

// hasAVX2 is false off amd64: the Go kernels run.
const hasAVX2 = false

func dotQ4KQ8K(row []byte, a *Q8K) float32 { return dotQ4KQ8KGo(row, a) }

func dotQ6KQ8K(row []byte, a *Q8K) float32 { return dotQ6KQ8KGo(row, a) }

func dotQ4KQ8Kx4(row []byte, a *[4]*Q8K, out *[4]float32) bool { return false }

func dotQ6KQ8Kx4(row []byte, a *[4]*Q8K, out *[4]float32) bool { return false }

func dotQ80(w []int8, wd []float32, a *Q8Blocks) float32 { return dotQ80Go(w, wd, a) }

func dotQ80x4(w []int8, wd []float32, a *[4]*Q8Blocks, out *[4]float32) {
	for t, v := range a {
		out[t] = dotQ80Go(w, wd, v)
	}
}

// q8kx4 and q80x4 hold the assembly's pointers on amd64 (unused here).
type (
	q8kx4 struct {
		q8 [4]*int8
		bs [4]*int16
		d  [4]*float32
	}
	q80x4 struct {
		x [4]*int8
		d [4]*float32
	}
)

func dotQ4KQ8K2x4(r0, r1 []byte, a *Q8Kx4, out *[8]float32) bool { return false }

func dotQ80x2x4(w0, w1 []int8, wd0, wd1 []float32, a *Q8Blocksx4, out *[8]float32) bool {
	return false
}

func dotQ6KQ8K2x4(r0, r1 []byte, a *Q8Kx4, out *[8]float32) bool { return false }
