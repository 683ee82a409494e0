package verify_test

import (
	"context"
	"testing"

	"github.com/aitbc/aitbc/internal/verify"
)

// BenchmarkReplayCost is the cost of replaying the engine's sampler
// (docs/VERIFICATION.md, "Replaying the sampler"): the same 250-token
// job (tolstoy-1m Q8_0, temperature 0.8, one thread) verified as a
// version 1 attestation (commitments and the last token only), as
// version 3 replaying the stop and the last token (ReplayStopOnly), and
// as version 3 replaying every token (the default), with the generation
// for scale. Compare cpu-ns/op.
func BenchmarkReplayCost(b *testing.B) {
	m, hash, req := benchJob(b)
	ctx := context.Background()
	_, a, err := verify.Generate(ctx, m, req, hash, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	exp := verify.Expected{ModelSHA256: hash}
	stopOnly := verify.DefaultTolerance
	stopOnly.ReplayStopOnly = true
	b.Run("generate", func(b *testing.B) {
		defer reportCPU(b, cpuTime())
		for b.Loop() {
			if _, _, err := verify.Generate(ctx, m, req, hash, "bench", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name   string
		a      *verify.Attestation
		tol    verify.Tolerance
		replay int
	}{
		{"v1", asV1(a), verify.DefaultTolerance, 0},
		{"stop-only", a, stopOnly, 1},
		{"full", a, verify.DefaultTolerance, len(a.OutputTokens)},
	} {
		b.Run(c.name, func(b *testing.B) {
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				rep, err := verify.Recompute(ctx, m, c.a, exp, 1, c.tol)
				if err != nil || rep.Replayed != c.replay {
					b.Fatal(err, rep.Replayed)
				}
			}
		})
	}
}
