package engine

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
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

// TestAbandonedSessionStopsWorkers drops sessions without Close and checks
// that their worker goroutines end once the sessions are collected.
func TestAbandonedSessionStopsWorkers(t *testing.T) {
	m := testModel(t)
	before := runtime.NumGoroutine()
	for range 5 {
		s, err := m.NewSession(SessionOptions{Threads: 3, MaxPos: 4})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Forward(1, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 500 {
			t.Fatalf("%d goroutines, %d before the sessions", runtime.NumGoroutine(), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func testModel(t *testing.T) *Model {
	t.Helper()
	m, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
