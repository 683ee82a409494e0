package engine

import (
	"runtime"
	"sync/atomic"
)

// pool runs one task at a time split into n parts, part 0 on the calling
// goroutine and parts 1..n-1 on persistent workers. A small model's
// matrix-vector product takes a few microseconds, so dispatch must cost
// far less: workers spin on an atomic generation counter for a while
// before parking on a channel, and the caller spins until they are done.
// Starting a goroutine per product, or a channel round trip per part, is
// slower than the work itself at this size.
type pool struct {
	n       int
	task    func(part, parts int)
	gen     atomic.Uint64 // bumped once per task; workers run when it moves
	pending atomic.Int32  // workers still running the current task
	quit    atomic.Bool
	workers []*poolWorker
}

type poolWorker struct {
	sleeping atomic.Int32 // 1 while parked on wake
	wake     chan struct{}
}

// Spin budgets, in loop iterations (a few nanoseconds each). A worker that
// sees no task for about 50µs parks; this keeps a core busy only while
// tokens are being generated.
const (
	workerSpins = 20000
	callerSpins = 256
)

func newPool(n int) *pool {
	if n < 1 {
		n = 1
	}
	p := &pool{n: n}
	for i := 1; i < n; i++ {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.work(i, w)
	}
	return p
}

// run executes task(part, n) for every part and returns when all are done.
// Only one goroutine may call run at a time.
func (p *pool) run(task func(part, parts int)) {
	if p.n == 1 {
		task(0, 1)
		return
	}
	p.task = task
	p.pending.Store(int32(p.n - 1))
	p.gen.Add(1) // publishes task (atomics order the plain write above)
	p.wakeAll()
	task(0, p.n)
	for spins := 0; p.pending.Load() != 0; spins++ {
		if spins >= callerSpins {
			runtime.Gosched() // let a descheduled worker run
			spins = 0
		}
	}
}

func (p *pool) wakeAll() {
	for _, w := range p.workers {
		if w.sleeping.Load() == 1 && w.sleeping.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
}

func (p *pool) work(part int, w *poolWorker) {
	// gen is 0 when the pool is made; the first task may be published
	// before this goroutine starts, so do not read the counter here.
	var seen uint64
	for {
		for spins := 0; p.gen.Load() == seen; spins++ {
			if spins < workerSpins {
				continue
			}
			// Park. The caller bumps gen and then checks sleeping; we set
			// sleeping and then check gen, so one of us sees the other.
			w.sleeping.Store(1)
			if p.gen.Load() != seen {
				if !w.sleeping.CompareAndSwap(1, 0) {
					<-w.wake // the caller claimed us and is sending
				}
				break
			}
			<-w.wake
			spins = 0
		}
		seen = p.gen.Load()
		if p.quit.Load() {
			return
		}
		p.task(part, p.n)
		p.pending.Add(-1)
	}
}

// close stops the workers. The pool must be idle.
func (p *pool) close() {
	if p.n == 1 || p.quit.Swap(true) {
		return
	}
	p.gen.Add(1)
	p.wakeAll()
}

// span returns part's share [lo, hi) of n items, with boundaries rounded
// down to a multiple of align so that kernels see whole row groups.
func span(n, part, parts, align int) (lo, hi int) {
	lo = n * part / parts / align * align
	hi = n
	if part+1 < parts {
		hi = n * (part + 1) / parts / align * align
	}
	return lo, hi
}
