//go:build !amd64

package gguf

// hasAVX2 is false off amd64: the Go kernels run.
const hasAVX2 = false

func q4kSums(out []int32, row []byte, q8 []int8, bsums []int16) { q4kSumsGo(out, row, q8, bsums) }

func q6kSums(out []int32, row []byte, q8 []int8, bsums []int16) { q6kSumsGo(out, row, q8, bsums) }

func blockSums(out []int32, w, x []int8) { blockSumsGo(out, w, x) }
