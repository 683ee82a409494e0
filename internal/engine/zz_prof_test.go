package engine_test

import (
	"context"
	"os"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
)

func BenchmarkZZFile(b *testing.B) {
	m, err := engine.Open(os.Getenv("ZZ_MODEL"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r, err := m.Bench(context.Background(), engine.BenchOptions{Threads: 1, Tokens: 128, Reps: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.TokensPerSecond, "tok/s")
	}
}
