//go:build !unix

package testnet

func selfCPU() float64 { return 0 }
