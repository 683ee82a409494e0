package lm_test

import (
	"context"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/train/lm"
)

// BenchmarkFinetune measures fine-tuning tolstoy-1m on the test book:
// tokens trained per second (steps × batch × sequence length over the
// wall time, held-out evaluations included), on one goroutine.
func BenchmarkFinetune(b *testing.B) {
	m, err := engine.LoadDefault()
	if err != nil {
		b.Fatal(err)
	}
	text := book(b)
	p := lm.Params{Steps: 4, BatchSize: 4, SeqLen: 64, Workers: 1}
	b.ResetTimer()
	for range b.N {
		if _, err := lm.Finetune(context.Background(), m, "x", text, p, 0, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*p.Steps*p.BatchSize*p.SeqLen)/b.Elapsed().Seconds(), "tokens/s")
}
