package zk_test

import (
	"syscall"
	"testing"
	"time"

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
		cpu := cpuTime()
		for b.Loop() {
			if _, err := p.Prove(s, o); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("verify", func(b *testing.B) {
		cpu := cpuTime()
		for b.Loop() {
			if err := v.Verify(s, proof); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
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

// cpuTime is the process's CPU time so far (user + system). On a shared
// machine the wall time per operation follows the load; the CPU time per
// operation is what a validator's core spends.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(cpuTime()-since)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
