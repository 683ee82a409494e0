//go:build !amd64

package gguf

// hasAVX2 is false off amd64: the Go kernels run.
const hasAVX2 = false

func q4kBlock(qs []byte, q8 []int8, sc *[8]int16) int32 { return q4kBlockGo(qs, q8, sc) }

func q6kBlock(ql, qh []byte, q8 []int8, sc *[16]int16) int32 { return q6kBlockGo(ql, qh, q8, sc) }

func blockSums(out []int32, w, x []int8) { blockSumsGo(out, w, x) }
