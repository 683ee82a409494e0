package engine

import (
	"sync/atomic"
	"testing"
)

// TestPoolCoversEveryUnitOnce runs jobs of many shapes on pools of several
// sizes and checks each unit is processed exactly once per run.
func TestPoolCoversEveryUnitOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 5} {
		p := newPool(threads)
		for _, units := range []int{1, 2, 3, 7, 8, 33, 96, 1000, 70000} {
			hits := make([]atomic.Int32, units)
			j := p.newJob(func(lo, hi int) {
				for u := lo; u < hi; u++ {
					hits[u].Add(1)
				}
			}, units)
			for range 50 {
				p.run(j)
			}
			for u := range hits {
				if n := hits[u].Load(); n != 50 {
					t.Fatalf("threads %d units %d: unit %d ran %d times in 50 runs", threads, units, u, n)
				}
			}
		}
		p.close()
	}
}

// BenchmarkPoolDispatch measures the cost of one parallel step with no
// work: the synchronisation overhead paid about 21 times per token.
func BenchmarkPoolDispatch(b *testing.B) {
	p := newPool(2)
	defer p.close()
	j := p.newJob(func(lo, hi int) {}, 32)
	for b.Loop() {
		p.run(j)
	}
}
