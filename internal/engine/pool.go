package engine

import (
	"runtime"
	"sync/atomic"
)

// pool runs one job at a time on the calling goroutine plus n-1 persistent
// workers. A job is a range of units (row groups, heads) cut into a few
// chunks per thread. The caller claims chunks from the front of the range
// and workers from the back, so when nothing disturbs them each thread
// keeps computing the same rows token after token (its share of the
// weights stays in its core's cache), and when a worker is slow to wake or
// descheduled by a busy machine the caller simply takes its chunks: no one
// waits for a thread that is not running, except for a chunk already
// begun.
//
// A small model's matrix-vector product takes microseconds, so dispatch
// must be cheaper still: workers spin on an atomic generation counter for
// a short while before parking on a channel, and claims are single CAS
// operations on a word holding the generation and the unclaimed range.
type pool struct {
	n       int
	gen     atomic.Uint64       // bumped once per job
	job     atomic.Pointer[job] // the current job
	state   atomic.Uint64       // generation<<32 | next front chunk<<16 | end of unclaimed chunks
	done    atomic.Int32        // chunks finished in the current job
	quit    atomic.Bool
	workers []*poolWorker

	// Contention fallback, touched only by the calling goroutine: when the
	// workers do not get to run (a busy machine), or the caller often has to
	// wait long for a chunk a descheduled worker holds, run steps alone for
	// a while, then try again.
	runs, stalls, solo int
	waitNS             int64
	mine, total        int
	yieldsTotal        int
}

// job is an immutable description of a parallel step: fn processes units
// [lo, hi); fn may read per-step parameters that the caller sets before
// run (the CAS that claims a chunk orders those writes before the read).
type job struct {
	fn     func(lo, hi int)
	units  int
	chunk  int // units per chunk
	chunks int
}

type poolWorker struct {
	sleeping atomic.Int32 // 1 while parked on wake
	wake     chan struct{}
}

const (
	// A wait of more than stallYields yields counts as a stall. Every
	// stallWindow steps, more than maxStalls stalls, or workers that ran
	// less than half their share of the chunks, switch to running alone for
	// soloSteps steps (about a hundred tokens of a small model).
	stallYields = 32
	stallWindow = 256
	maxStalls   = 16
	soloSteps   = 2048

	// chunksPerThread trades claim overhead (one CAS per chunk) against
	// how finely work moves away from a stalled thread.
	chunksPerThread = 4
	// workerSpins is how long (in loop iterations, ~10µs) an idle worker
	// spins before parking; the caller yields every callerSpins while it
	// waits for a chunk another thread is finishing.
	workerSpins = 4000
	callerSpins = 64
	maxChunks   = 1<<16 - 1
)

func newPool(n int) *pool {
	if n < 1 {
		n = 1
	}
	p := &pool{n: n}
	for range n - 1 {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.work(w)
	}
	return p
}

// newJob describes fn over units, chunked for this pool's thread count.
func (p *pool) newJob(fn func(lo, hi int), units int) *job {
	chunk := max((units+p.n*chunksPerThread-1)/(p.n*chunksPerThread), 1)
	chunks := (units + chunk - 1) / chunk
	if chunks > maxChunks {
		chunk = (units + maxChunks - 1) / maxChunks
		chunks = (units + chunk - 1) / chunk
	}
	return &job{fn: fn, units: units, chunk: chunk, chunks: chunks}
}

func (j *job) span(c int) (lo, hi int) { return c * j.chunk, min((c+1)*j.chunk, j.units) }

// run executes j and returns when every unit is done. Only one goroutine
// may call run at a time.
func (p *pool) run(j *job) {
	if p.n == 1 || j.chunks == 1 {
		j.fn(0, j.units)
		return
	}
	if p.solo > 0 {
		p.solo--
		j.fn(0, j.units)
		return
	}
	g := uint32(p.gen.Load() + 1)
	p.job.Store(j)
	p.done.Store(0)
	p.state.Store(uint64(g)<<32 | uint64(j.chunks))
	p.gen.Store(uint64(g))
	for _, w := range p.workers {
		if w.sleeping.Load() == 1 && w.sleeping.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
	for {
		c, ok := p.claim(g, true)
		if !ok {
			break
		}
		j.fn(j.span(c))
		p.done.Add(1)
		p.mine++
	}
	p.total += j.chunks
	yields := 0
	for spins := 0; p.done.Load() != int32(j.chunks); spins++ {
		if spins >= callerSpins {
			runtime.Gosched()
			spins = 0
			yields++
		}
	}
	// Drop the job (and through it the session) so that an abandoned
	// session can be collected and its cleanup can stop the workers.
	p.job.Store(nil)
	if yields > stallYields {
		p.stalls++
	}
	if p.runs++; p.runs == stallWindow {
		// Workers that got less than half their fair share of the chunks
		// were not running: parallel steps only cost synchronisation.
		starved := (p.total-p.mine)*2*p.n < p.total*(p.n-1)
		if p.stalls > maxStalls || starved {
			p.solo = soloSteps
		}
		p.runs, p.stalls, p.mine, p.total = 0, 0, 0, 0
	}
}

// claim takes one chunk of generation g from the front or the back of the
// unclaimed range.
func (p *pool) claim(g uint32, front bool) (int, bool) {
	for {
		s := p.state.Load()
		lo, hi := int(s>>16&0xffff), int(s&0xffff)
		if uint32(s>>32) != g || lo >= hi {
			return 0, false
		}
		c, next := hi-1, s-1
		if front {
			c, next = lo, s+1<<16
		}
		if p.state.CompareAndSwap(s, next) {
			return c, true
		}
	}
}

func (p *pool) work(w *poolWorker) {
	var seen uint64 // the first job may be published before this goroutine runs
	for {
		for spins := 0; p.gen.Load() == seen && !p.quit.Load(); spins++ {
			if spins < workerSpins {
				continue
			}
			// Park. run bumps gen and then checks sleeping; we set sleeping
			// and then check gen, so one of us sees the other.
			w.sleeping.Store(1)
			if p.gen.Load() != seen || p.quit.Load() {
				if !w.sleeping.CompareAndSwap(1, 0) {
					<-w.wake // run claimed us and is sending
				}
				break
			}
			<-w.wake
			spins = 0
		}
		if p.quit.Load() {
			return
		}
		seen = p.gen.Load()
		j := p.job.Load()
		if j == nil {
			continue // the job finished before we looked
		}
		// If the caller has moved on to a newer job, the claims fail
		// (generation mismatch) and we come back for it.
		for {
			c, ok := p.claim(uint32(seen), false)
			if !ok {
				break
			}
			j.fn(j.span(c))
			p.done.Add(1)
		}
	}
}

// close stops the workers. The pool must be idle.
func (p *pool) close() {
	if p.quit.Swap(true) {
		return
	}
	for _, w := range p.workers {
		if w.sleeping.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
}
