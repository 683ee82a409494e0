package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Writer persists job snapshots in the background, so that the
// coordinator never writes to its store while it holds its lock. Put
// hands over a snapshot and returns at once; the writer keeps only the
// newest pending snapshot of each job (an older one would be overwritten
// anyway) and writes them in the order jobs were first handed over. A
// failed write is retried until it succeeds or the writer stops.
type Writer struct {
	st    Store
	log   *slog.Logger
	retry time.Duration

	mu      sync.Mutex
	pending map[string]*pendingJob
	order   []string
	kick    chan struct{}
	idle    *sync.Cond // broadcast when nothing is pending
}

type pendingJob struct {
	job   *Job
	after []func()
}

// NewWriter returns a writer over st; call Run to start it.
func NewWriter(st Store, log *slog.Logger) *Writer {
	w := &Writer{st: st, log: log, retry: 200 * time.Millisecond, pending: map[string]*pendingJob{}, kick: make(chan struct{}, 1)}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// Put schedules j (which the caller must not modify afterwards) to be
// written. after, if not nil, runs on the writer's goroutine once j or a
// newer snapshot of the same job is durably stored; it must not block for
// long. Put never blocks on I/O and may be called with other locks held.
func (w *Writer) Put(j *Job, after func()) {
	w.mu.Lock()
	p := w.pending[j.ID]
	if p == nil {
		p = &pendingJob{}
		w.pending[j.ID] = p
		w.order = append(w.order, j.ID)
	}
	p.job = j
	if after != nil {
		p.after = append(p.after, after)
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Pending is the number of jobs waiting to be written.
func (w *Writer) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// Run writes snapshots until ctx ends, then writes what is still pending
// (once each) so that a clean shutdown loses nothing.
func (w *Writer) Run(ctx context.Context) {
	for {
		w.drain(ctx, false)
		select {
		case <-ctx.Done():
			w.drain(ctx, true)
			return
		case <-w.kick:
		}
	}
}

// drain writes everything pending now. On a failed write it keeps the
// snapshot and waits before trying again (or returns when ctx ends); the
// final drain tries each once. A write in progress is never canceled: a
// database connection interrupted mid-statement may be lost.
func (w *Writer) drain(ctx context.Context, final bool) {
	for {
		w.mu.Lock()
		if len(w.order) == 0 {
			w.idle.Broadcast()
			w.mu.Unlock()
			return
		}
		id := w.order[0]
		p := w.pending[id]
		j := p.job
		w.mu.Unlock()

		if err := w.st.PutJob(context.WithoutCancel(ctx), j); err != nil {
			w.log.Error("store job", "job", id, "err", err)
			if final || errors.Is(err, ErrLeaseLost) {
				// (A job another coordinator took over is its to write:
				// retrying would never succeed, and its callbacks must
				// not run here.)
				w.mu.Lock()
				w.order = w.order[1:]
				if p.job == j {
					delete(w.pending, id)
				} else {
					w.order = append(w.order, id) // a newer snapshot gets its own try
				}
				w.mu.Unlock()
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(w.retry):
			}
			continue
		}

		w.mu.Lock()
		var after []func()
		if p.job == j { // nothing newer arrived while writing
			after = p.after
			delete(w.pending, id)
			w.order = w.order[1:]
		} else {
			// A newer snapshot arrived: write it next; the callbacks wait
			// for it (it contains everything j did).
			w.order = append(w.order[1:], id)
		}
		w.mu.Unlock()
		for _, f := range after {
			f()
		}
	}
}

// Flush waits until nothing is pending or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.idle.Broadcast()
		w.mu.Unlock()
	})
	defer stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.pending) > 0 && ctx.Err() == nil {
		w.idle.Wait()
	}
	return ctx.Err()
}
