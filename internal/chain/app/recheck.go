package app

import (
	"bytes"

	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// recheckable lists the message types whose check (the ante checks and
// the message's own) is a function of the transaction, the parameters
// (fixed after genesis), static configuration (module accounts, denoms)
// and the state keys it reads through the Reader it is given: never the
// height, the time, the proposer or an iteration over state. For them a
// recheck can compare what the last check read with what it would read
// now and, when nothing it read changed, keep the verdict and replay the
// writes without running the checks again. Every other type is always
// rechecked in full: add a type here only when its handler meets this.
var recheckable = map[string]bool{bank.TypeSend: true}

// checkRead is one value a recheckable transaction's check read from the
// mempool's view.
type checkRead struct {
	key, val []byte
}

// checkEffect is what a recheckable transaction's last check read and
// wrote.
type checkEffect struct {
	reads  []checkRead
	writes []state.KV // sorted; a nil value deletes
}

// recheckState is what lets a recheck keep a verdict: guarded by checkMu.
//
// The argument that a kept verdict is the verdict a full recheck would
// give: a recheckable check is a function of the values it reads (see
// recheckable). When every value the last check read is the same in the
// mempool's view now, the check would read the same, write the same and
// answer the same, so the recorded writes are applied in its place and
// later transactions see the state a full recheck would have left.
//
// It compares values, not which keys the block wrote: a transfer whose
// sender's earlier transfer went into the block read a nonce and a
// balance that the block wrote, to the very values the mempool had
// given them, and is kept; one whose sender another validator's block
// drained is not. Values are compared in the mempool's view at the
// transaction's place in the pass, so transactions before it that were
// refused, parked or replaced are accounted for too.
type recheckState struct {
	// effects: recorded since the last commit; prev: recorded in the
	// commit interval before. Older records are dropped: the transaction
	// left the mempool, or was parked and not run.
	effects, prev map[[32]byte]*checkEffect
	// full turns the keeping off (WithFullRecheck).
	full bool

	executed, kept uint64
}

func newRecheckState() recheckState {
	return recheckState{effects: map[[32]byte]*checkEffect{}}
}

// rotate starts a new commit interval.
func (r *recheckState) rotate() {
	r.prev, r.effects = r.effects, make(map[[32]byte]*checkEffect, len(r.effects))
}

// RecheckStats counts what rechecks did since the app started: Executed
// ran a transaction's checks again, Kept kept its verdict because nothing
// it read had changed (see recheckable).
type RecheckStats struct {
	Executed uint64 `json:"executed"`
	Kept     uint64 `json:"kept"`
}

// RecheckStats returns the recheck counters.
func (a *App) RecheckStats() RecheckStats {
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	return RecheckStats{Executed: a.rc.executed, Kept: a.rc.kept}
}

// WithFullRecheck turns off keeping verdicts on recheck: every mempool
// transaction's checks run again after every block. For comparison (tests
// and benchmarks) and as a fallback.
func WithFullRecheck() Option { return func(a *App) { a.rc.full = true } }

// readRecorder is the Reader a recheckable transaction's check reads the
// mempool's view through: it records every value it hands out.
type readRecorder struct {
	kv    *state.Cache
	reads []checkRead
}

func (r *readRecorder) Get(key []byte) ([]byte, error) {
	v, err := r.kv.Get(key)
	if err != nil {
		return nil, err
	}
	r.reads = append(r.reads, checkRead{key: append([]byte(nil), key...), val: v})
	return v, nil
}

// runCheck executes t against the mempool's view and keeps its effects
// there when it passes. Called with checkMu held.
func (a *App) runCheck(t *tx.Tx, h [32]byte) error {
	p, env := a.checkEnv()
	if !recheckable[t.Msg.Type] || a.rc.full {
		kv := a.checkState.Child()
		if _, err := a.execTx(kv, t, h, p, env); err != nil {
			return err
		}
		kv.Write()
		return nil
	}
	rec := &readRecorder{kv: a.checkState, reads: make([]checkRead, 0, 4)}
	kv := state.NewCache(rec)
	if _, err := a.execTx(kv, t, h, p, env); err != nil {
		return err
	}
	ws := kv.Sorted()
	a.applyWrites(ws)
	a.rc.effects[h] = &checkEffect{reads: rec.reads, writes: ws}
	return nil
}

// applyWrites writes a check's effects into the mempool's view.
func (a *App) applyWrites(ws []state.KV) {
	for _, w := range ws {
		if w.Value == nil {
			a.checkState.Delete(w.Key)
		} else {
			a.checkState.Set(w.Key, w.Value)
		}
	}
}

// keepVerdict is the recheck of t when nothing its last check read has
// changed: it applies the recorded writes and reports true; otherwise it
// changes nothing and reports false. Called with checkMu held.
func (a *App) keepVerdict(t *tx.Tx, h [32]byte) bool {
	if a.rc.full || !recheckable[t.Msg.Type] {
		return false
	}
	e := a.rc.prev[h]
	if e == nil {
		return false
	}
	delete(a.rc.prev, h)
	for _, r := range e.reads {
		v, err := a.checkState.Get(r.key)
		if err != nil || !bytes.Equal(v, r.val) {
			return false
		}
	}
	a.applyWrites(e.writes)
	a.rc.effects[h] = e
	return true
}
