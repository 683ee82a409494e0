package zk_test

import (
	"testing"

	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
	"github.com/aitbc/aitbc/internal/zk"
)

// go test -run '^$' -bench . -benchtime 20x ./internal/zk
func BenchmarkPrivateSettle(b *testing.B) {
	keys, err := zk.Setup()
	if err != nil {
		b.Fatal(err)
	}
	p, err := zk.NewProver(keys.Proving)
	if err != nil {
		b.Fatal(err)
	}
	v, err := chainzk.NewVerifier(keys.Verifying)
	if err != nil {
		b.Fatal(err)
	}
	s, o := job(b)
	proof, err := p.Prove(s, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("prove", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.Prove(s, o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if err := v.Verify(s, proof); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(proof)), "proof-bytes")
		b.ReportMetric(float64(len(keys.Verifying)), "vk-bytes")
		b.ReportMetric(float64(len(keys.Proving)), "pk-bytes")
	})
	b.Run("load-prover", func(b *testing.B) {
		for b.Loop() {
			if _, err := zk.NewProver(keys.Proving); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPrivateSetup is the devnet's one-off setup (at genesis
// creation), and the circuit's size.
func BenchmarkPrivateSetup(b *testing.B) {
	ccs, err := chainzk.Compile()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := zk.Setup(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ccs.GetNbConstraints()), "constraints")
}
