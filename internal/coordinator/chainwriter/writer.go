// Package chainwriter sends a coordinator's transactions (create_for,
// assign, settle, cancel) one at a time, in the order they were queued, so
// that the coordinator's nonces keep each job's transactions in order
// (create before assign before settle). Enqueue never blocks: the
// coordinator calls it while holding its lock, and the writer builds and
// sends each transaction on its own goroutine with no lock held.
//
// Imported by the coordinator only.
package chainwriter

import (
	"context"
	"log/slog"
	"sync"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Sender signs a message with the coordinator's key and submits it. It
// returns once the node accepted the transaction into its mempool.
type Sender interface {
	Send(ctx context.Context, msg tx.Msg) (txHash string, err error)
}

// Op is one transaction to send.
type Op struct {
	Kind  string // create, assign, settle, cancel: for logs
	JobID string
	// Build returns the message to send, or a nil message to skip the op
	// (the job moved on since it was queued). It runs on the writer's
	// goroutine just before sending, so it sees the job as it is then; it
	// may read the chain.
	Build func(ctx context.Context) (*tx.Msg, error)
	// Done, if not nil, learns the transaction's hash or why it was not
	// sent (a Build error or the node's refusal).
	Done func(hash string, err error)
}

// Writer sends queued ops in order.
type Writer struct {
	sender Sender
	log    *slog.Logger

	mu   sync.Mutex
	q    []Op
	kick chan struct{}
}

// New returns a writer that sends through s; call Run to start it.
func New(s Sender, log *slog.Logger) *Writer {
	return &Writer{sender: s, log: log, kick: make(chan struct{}, 1)}
}

// Enqueue queues op. It never blocks and never drops an op.
func (w *Writer) Enqueue(op Op) {
	w.mu.Lock()
	w.q = append(w.q, op)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Len is the number of ops waiting.
func (w *Writer) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.q)
}

// Run sends ops until ctx ends.
func (w *Writer) Run(ctx context.Context) {
	for {
		for {
			w.mu.Lock()
			if len(w.q) == 0 {
				w.q = nil // let a burst's backing array go
				w.mu.Unlock()
				break
			}
			op := w.q[0]
			w.q = w.q[1:]
			w.mu.Unlock()
			w.send(ctx, op)
			if ctx.Err() != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
	}
}

func (w *Writer) send(ctx context.Context, op Op) {
	msg, err := op.Build(ctx)
	if err != nil {
		w.log.Error("build chain tx", "op", op.Kind, "job", op.JobID, "err", err)
		if op.Done != nil {
			op.Done("", err)
		}
		return
	}
	if msg == nil {
		return
	}
	hash, err := w.sender.Send(ctx, *msg)
	if err != nil {
		w.log.Warn("chain tx refused", "op", op.Kind, "job", op.JobID, "err", err)
	}
	if op.Done != nil {
		op.Done(hash, err)
	}
}
