package app

import (
	"sync"
	"time"
)

// A block is sized by the work it takes, not only by its bytes. The bytes
// cap (a consensus parameter, node.MaxBlockBytes) must let a 2 s block hold
// 2 s of offered load, but a proposer that fills it after a burst makes a
// block that every validator then needs many seconds to receive and execute,
// while no other block can be made (measured: 79,404 transfers in one block
// on four loaded validators, 72 s to the next block). So the proposer also
// caps the number of transactions at what it executed in about one block
// interval recently: a workMeter times FinalizeBlock through Commit and
// keeps a moving average of the time per transaction.
//
// This changes only which transactions the proposer offers, never how a
// block executes: PrepareProposal's choice is the proposer's own (the
// mempool's contents already differ between validators), and every
// validator executes the block that consensus agreed on. The clock is read
// through a function the node gives (WithWorkBudget); the state machine
// itself never reads it.
type workMeter struct {
	budget time.Duration
	now    func() time.Time

	mu    sync.Mutex
	start time.Time     // of the block being executed
	perTx time.Duration // moving average; 0 until a block of minMeasuredTxs
}

const (
	// minMeasuredTxs: smaller blocks are mostly fixed costs and would
	// overstate the time per transaction.
	minMeasuredTxs = 200
	// minBlockTxs: the proposer always offers at least this many, so a
	// slow measurement cannot starve the chain.
	minBlockTxs = 2000
	// firstBlockTxs caps proposals until a block has been measured (about
	// what the earlier 2 MB cap held): measured, the first block after a
	// burst otherwise took 39,780 transfers, unmeasured.
	firstBlockTxs = 10_000
)

// WithWorkBudget makes the proposer cap a block at the transactions it can
// execute (FinalizeBlock through Commit, as measured on recent blocks) in
// budget, and no fewer than 2,000; 10,000 until a block of 200 or more has
// been measured. now is the clock (time.Now); the node
// passes its block interval as the budget.
func WithWorkBudget(budget time.Duration, now func() time.Time) Option {
	return func(a *App) {
		if budget > 0 && now != nil {
			a.work = &workMeter{budget: budget, now: now}
		}
	}
}

func (w *workMeter) begin() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.start = w.now()
	w.mu.Unlock()
}

// end records a block of n transactions whose execution began at begin.
func (w *workMeter) end(n int) {
	if w == nil || n < minMeasuredTxs {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.start.IsZero() {
		return
	}
	sample := w.now().Sub(w.start) / time.Duration(n)
	if w.perTx == 0 {
		w.perTx = sample
	} else {
		w.perTx = (3*w.perTx + sample) / 4
	}
	w.start = time.Time{}
}

// maxTxs is the most transactions a proposal may hold; 0: no cap.
func (w *workMeter) maxTxs() int {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.perTx <= 0 {
		return firstBlockTxs
	}
	return max(minBlockTxs, int(w.budget/w.perTx))
}

// ProposalCap returns the most transactions this node would put in its next
// proposal (0: none beyond the bytes cap), for metrics and tests.
func (a *App) ProposalCap() int { return a.work.maxTxs() }
