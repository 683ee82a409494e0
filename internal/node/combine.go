package node

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// batchPreVerifier checks many raw transactions' signatures at once and
// returns each one's verdict (app.App.PreVerifyBatch, spread over the
// CPUs by preVerifyParallel).
type batchPreVerifier func(raws [][]byte) []error

// sigCombiner gathers the signature checks of concurrent single
// submissions (POST /api/v1/transaction/submit, one goroutine per request)
// into batches: a batch of valid ed25519 signatures costs about half as
// much per signature as checking each, and signatures are the largest part
// of admitting a transaction.
//
// A caller that finds no check running checks what has queued, and those
// that arrive in the meantime queue behind it; the next batch is checked by
// the first of them, so each caller checks at most one batch and a busy
// stream of submissions cannot keep one caller working for all the others.
// A batch whose equation fails is checked one signature at a time
// (tx.Verifier.VerifyBatch), so one bad signature refuses only itself.
//
// Submissions that are in flight elsewhere (in the mempool's CheckTx,
// whose checks against the mempool's view run one at a time under the
// app's lock, or waiting while a block commits) come back one by one and
// would find no batch to join: measured, most batches then held one
// transaction. So a
// caller that would check fewer transactions than there are submissions in
// flight (active) waits up to gather for them to queue. A lone submitter
// (active 1) never waits.
type sigCombiner struct {
	verify batchPreVerifier
	max    int           // transactions per batch
	gather time.Duration // longest wait for submissions in flight to queue

	// active counts submissions between their start and the end of their
	// mempool admission (Node.Submit).
	active atomic.Int64

	mu      sync.Mutex
	busy    bool // a caller is checking a batch
	pending []*sigReq
	arrived chan struct{} // poked (never blocking) when a request queues
}

type sigReq struct {
	raw  []byte
	err  error
	lead bool          // woken to check the next batch, not with a verdict
	wake chan struct{} // closed once: verdict ready, or lead
}

// maxCombined bounds a batch: the first submitter in it waits for the
// last (128 signatures are about 2.5 ms of one core, split over the CPUs).
const maxCombined = 128

// gatherWait bounds what a submission may wait for others to join its
// batch: a few signature checks' time, against a block interval of 100 ms
// or more.
const gatherWait = 300 * time.Microsecond

func newSigCombiner(v batchPreVerifier) *sigCombiner {
	return &sigCombiner{verify: v, max: maxCombined, gather: gatherWait, arrived: make(chan struct{}, 1)}
}

// check returns raw's PreVerify verdict. It does not take a context: the
// wait is one batch of signature checks, bounded by max.
func (c *sigCombiner) check(raw []byte) error {
	r := &sigReq{raw: raw, wake: make(chan struct{})}
	c.mu.Lock()
	c.pending = append(c.pending, r)
	select {
	case c.arrived <- struct{}{}:
	default:
	}
	if c.busy {
		c.mu.Unlock()
		<-r.wake
		if !r.lead {
			return r.err
		}
		// Promoted: r is first in pending and c.busy is still set.
	} else {
		c.busy = true
		c.mu.Unlock()
	}
	c.waitForOthers()
	c.mu.Lock()
	n := min(len(c.pending), c.max)
	batch := c.pending[:n:n]
	c.pending = c.pending[n:]
	c.mu.Unlock()

	raws := make([][]byte, n)
	for i, q := range batch {
		raws[i] = q.raw
	}
	verdicts := c.safeVerify(raws)
	for i, q := range batch {
		q.err = verdicts[i]
		if q != r {
			close(q.wake)
		}
	}

	c.mu.Lock()
	if len(c.pending) > 0 {
		next := c.pending[0]
		next.lead = true
		c.mu.Unlock()
		close(next.wake)
	} else {
		c.busy = false
		c.pending = nil // drop the backing array of a burst
		c.mu.Unlock()
	}
	return r.err
}

// waitForOthers waits, up to c.gather, until as many requests have queued
// as there are submissions in flight (at most a batch). Called by the
// caller that checks the next batch.
func (c *sigCombiner) waitForOthers() {
	want := int(min(c.active.Load(), int64(c.max)))
	var timer *time.Timer
	for {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n >= want {
			break
		}
		if timer == nil {
			timer = time.NewTimer(c.gather)
			defer timer.Stop()
		}
		select {
		case <-c.arrived:
		case <-timer.C:
			return
		}
	}
}

// errCheckFailed answers a batch whose check panicked.
var errCheckFailed = errors.New("node: signature check failed")

// safeVerify is c.verify, turning a panic into every item's error: the
// caller may be an HTTP handler, whose panic net/http recovers, and a
// combiner left busy would then hold every later submission forever.
func (c *sigCombiner) safeVerify(raws [][]byte) (verdicts []error) {
	defer func() {
		if p := recover(); p != nil {
			verdicts = make([]error, len(raws))
			for i := range verdicts {
				verdicts[i] = fmt.Errorf("%w: %v", errCheckFailed, p)
			}
		}
	}()
	return c.verify(raws)
}
