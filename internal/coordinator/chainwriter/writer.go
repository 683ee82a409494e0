// Package chainwriter sends a coordinator's transactions (create_for,
// assign, settle, cancel) in the order they were queued, so that the
// coordinator's nonces keep each job's transactions in order (create
// before assign before settle). Enqueue never blocks: the coordinator
// calls it while holding its lock, and the writer builds and sends each
// transaction on its own goroutine with no lock held.
//
// Ops that pile up while a transaction is being sent go out together as
// one jobs/batch transaction (one signature, one nonce, one fee; the chain
// checks the batch's receipts as one batch of signatures), up to MaxBatch
// messages and about 56 KiB. Nothing waits to fill a batch: a lone op is
// sent alone at once, so a single job still settles in the next block. A
// batch the node refuses as a whole is sent again one op at a time, so
// that each op learns its own answer.
//
// Imported by the coordinator only.
package chainwriter

import (
	"context"
	"log/slog"
	"sync"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// MaxBatch is the most messages the writer puts in one jobs/batch.
const MaxBatch = 150

// maxBatchBytes bounds the summed size of a batch's messages, below the
// chain's transaction size limit (tx.MaxSize) with room for the envelope.
const maxBatchBytes = tx.MaxSize - 8<<10

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
			n := min(len(w.q), MaxBatch)
			ops := w.q[:n:n]
			w.q = w.q[n:]
			w.mu.Unlock()
			w.sendAll(ctx, ops)
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

// built is an op with its message.
type built struct {
	op  Op
	msg tx.Msg
}

// sendAll builds ops in order and sends them: runs of batchable messages
// as batches, the others alone.
func (w *Writer) sendAll(ctx context.Context, ops []Op) {
	var run []built
	size := 0
	flush := func() {
		w.sendBatch(ctx, run)
		run, size = nil, 0
	}
	for _, op := range ops {
		msg, err := op.Build(ctx)
		if err != nil {
			w.log.Error("build chain tx", "op", op.Kind, "job", op.JobID, "err", err)
			if op.Done != nil {
				op.Done("", err)
			}
			continue
		}
		if msg == nil {
			continue
		}
		if !jobs.Batchable(msg.Type) {
			flush()
			w.sendOne(ctx, built{op, *msg})
			continue
		}
		if sz := len(msg.Type) + len(msg.Body) + 8; size+sz > maxBatchBytes {
			flush()
		}
		run = append(run, built{op, *msg})
		size += len(msg.Type) + len(msg.Body) + 8
	}
	flush()
}

// sendBatch sends one message alone, or several as one jobs/batch; a
// refused batch is retried one message at a time.
func (w *Writer) sendBatch(ctx context.Context, run []built) {
	switch len(run) {
	case 0:
		return
	case 1:
		w.sendOne(ctx, run[0])
		return
	}
	msgs := make([]tx.Msg, len(run))
	for i, b := range run {
		msgs[i] = b.msg
	}
	hash, err := w.sender.Send(ctx, jobs.NewBatchMsg(msgs))
	if err != nil {
		w.log.Warn("chain batch refused; sending its ops one by one", "ops", len(run), "err", err)
		for _, b := range run {
			w.sendOne(ctx, b)
		}
		return
	}
	for _, b := range run {
		if b.op.Done != nil {
			b.op.Done(hash, nil)
		}
	}
}

func (w *Writer) sendOne(ctx context.Context, b built) {
	hash, err := w.sender.Send(ctx, b.msg)
	if err != nil {
		w.log.Warn("chain tx refused", "op", b.op.Kind, "job", b.op.JobID, "err", err)
	}
	if b.op.Done != nil {
		b.op.Done(hash, err)
	}
}
