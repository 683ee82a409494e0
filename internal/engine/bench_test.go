package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
)

// BenchmarkGenerate measures tolstoy-1m's greedy decoding rate over a full
// 256-position context with one thread and with two, reported as tok/s
// (positions per second, as llama2.c's run.c reports it).
func BenchmarkGenerate(b *testing.B) {
	m := defaultModel(b)
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			s, err := m.NewSession(engine.SessionOptions{Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			n := m.Config().SeqLen
			b.ReportAllocs()
			for b.Loop() {
				s.Reset()
				token := 1
				for pos := range n {
					logits, err := s.Forward(token, pos)
					if err != nil {
						b.Fatal(err)
					}
					token = argmax(logits)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
			b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(n*b.N), "µs/tok")
		})
	}
}

// BenchmarkModelBench runs the same measurement through Model.Bench, the
// code behind `aitbc model bench`.
func BenchmarkModelBench(b *testing.B) {
	m := defaultModel(b)
	for b.Loop() {
		r, err := m.Bench(context.Background(), engine.BenchOptions{Threads: 1, Reps: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.TokensPerSecond, "tok/s")
	}
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
