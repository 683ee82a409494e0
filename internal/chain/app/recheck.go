package app

import (
	"bytes"
	"slices"
	"strings"

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
	key string
	val []byte
	// pending: the value was written by another mempool transaction (it
	// was not the committed state's).
	pending bool
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
// recheckable). A read value is the same now when (a) the key was written
// in the mempool's view since the last commit and holds the recorded
// value, or (b) it was not, and the committed value equals the recorded
// one: either the recorded value came from committed state one commit ago
// and that block did not write the key, or a point read says so. Then the
// check would read the same, write the same and answer the same, so the
// recorded writes are applied in its place and later transactions see
// the state a full recheck would have left.
type recheckState struct {
	// writes mirrors the mempool view's writes since the last commit
	// (every path into checkState goes through setCheck).
	writes map[string][]byte
	// effects: recorded since the last commit; prev: recorded in the
	// commit interval before (a record older than that is not used: the
	// block writes below cover one commit only).
	effects, prev map[[32]byte]*checkEffect
	// block: the last committed block's state writes, sorted by key;
	// blockAll: the last commit's writes are not known in that form (the
	// first block, which also commits the genesis state): every read is
	// then compared against state.
	block    []state.KV
	blockAll bool
	// full turns the keeping off (WithFullRecheck).
	full bool

	executed, kept uint64
}

func newRecheckState() recheckState {
	return recheckState{writes: map[string][]byte{}, effects: map[[32]byte]*checkEffect{}, blockAll: true}
}

// rotate starts a new commit interval after a block whose sorted state
// writes are block (nil with all: unknown). Records of the interval that
// ends become prev; older ones are dropped (transactions that left the
// mempool without a recheck, parked ones).
func (r *recheckState) rotate(block []state.KV, all bool) {
	r.prev, r.effects = r.effects, make(map[[32]byte]*checkEffect, len(r.effects))
	r.writes = make(map[string][]byte, len(r.writes))
	r.block, r.blockAll = block, all
}

// touched reports whether the last committed block wrote key.
func (r *recheckState) touched(key string) bool {
	if r.blockAll {
		return true
	}
	_, found := slices.BinarySearchFunc(r.block, key, func(kv state.KV, k string) int {
		return strings.Compare(string(kv.Key), k)
	})
	return found
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
	kv      *state.Cache
	pending map[string][]byte
	reads   []checkRead
}

func (r *readRecorder) Get(key []byte) ([]byte, error) {
	v, err := r.kv.Get(key)
	if err != nil {
		return nil, err
	}
	k := string(key)
	_, p := r.pending[k]
	r.reads = append(r.reads, checkRead{key: k, val: v, pending: p})
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
		for _, w := range kv.Sorted() {
			a.setCheck(w.Key, w.Value)
		}
		return nil
	}
	rec := &readRecorder{kv: a.checkState, pending: a.rc.writes, reads: make([]checkRead, 0, 8)}
	kv := state.NewCache(rec)
	if _, err := a.execTx(kv, t, h, p, env); err != nil {
		return err
	}
	ws := kv.Sorted()
	for _, w := range ws {
		a.setCheck(w.Key, w.Value)
	}
	a.rc.effects[h] = &checkEffect{reads: rec.reads, writes: ws}
	return nil
}

// setCheck writes one value into the mempool's view and its mirror.
func (a *App) setCheck(key, value []byte) {
	if value == nil {
		a.checkState.Delete(key)
	} else {
		a.checkState.Set(key, value)
	}
	a.rc.writes[string(key)] = value
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
		if cur, ok := a.rc.writes[r.key]; ok {
			if !bytes.Equal(cur, r.val) {
				return false
			}
			continue
		}
		if !r.pending && !a.rc.touched(r.key) {
			continue // committed, and the block left it alone
		}
		v, err := a.checkState.Get([]byte(r.key))
		if err != nil || !bytes.Equal(v, r.val) {
			return false
		}
	}
	// Every read sees the state before the transaction's own writes, so
	// whether a value is a mempool write is decided before applying them.
	for i := range e.reads {
		_, e.reads[i].pending = a.rc.writes[e.reads[i].key]
	}
	for _, w := range e.writes {
		a.setCheck(w.Key, w.Value)
	}
	a.rc.effects[h] = e
	return true
}
