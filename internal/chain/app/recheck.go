package app

import (
	"bytes"

	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// recheckable lists the message types whose check (the ante checks and
// the message's own) is a function of the transaction, the parameters
// (fixed after genesis), static configuration (module accounts, denoms)
// and the values of the state keys keysOf declares for it: never the
// height, the time, the proposer or any other key. For them a recheck can
// compare those values with what the last check read and, when none
// changed, keep the verdict and replay the writes without running the
// checks again. Every other type is always rechecked in full: add a type
// here only with its keys in keysOf, and extend
// TestRecheckKeysCoverWhatChecksTouch to it.
var recheckable = map[string]bool{bank.TypeSend: true}

// keysOf returns the state keys t's checks read and write (they are the
// same keys: each is read, then written), or nil when its type declares
// none or its message does not decode. bank/send: the sender's nonce, the
// sender's native balance (the fee), and the sender's and recipient's
// balances of the sent denomination.
func keysOf(t *tx.Tx) [][]byte {
	if t.Msg.Type != bank.TypeSend {
		return nil
	}
	to, denom, _, err := bank.DecodeSendDenom(t.Msg)
	if err != nil {
		return nil
	}
	sender := t.Sender()
	keys := make([][]byte, 0, 5)
	keys = append(keys, keyNonce(sender), bank.BalanceKey(sender, bank.Native))
	if denom != bank.Native {
		keys = append(keys, bank.BalanceKey(sender, denom))
	}
	if to != sender {
		keys = append(keys, bank.BalanceKey(to, denom))
	}
	return keys
}

// checkEffect is what a recheckable transaction's last check found under
// its keys: the values before and after it.
type checkEffect struct {
	keys, before, after [][]byte
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

// recordKeys is keysOf(t) when a recheck may keep t's verdict (its type
// is recheckable and WithFullRecheck is off), else nil. It reads nothing
// that changes after New, so CheckTx calls it before taking checkMu.
func (a *App) recordKeys(t *tx.Tx) [][]byte {
	if a.rc.full || !recheckable[t.Msg.Type] {
		return nil
	}
	return keysOf(t)
}

// runCheck executes t against the mempool's view and keeps its effects
// there when it passes. keys are recordKeys(t), or nil to derive them
// here. Called with checkMu held.
func (a *App) runCheck(t *tx.Tx, h [32]byte, keys [][]byte) error {
	p, env := a.checkEnv()
	var before [][]byte
	if keys == nil {
		keys = a.recordKeys(t)
	}
	if keys != nil {
		before = make([][]byte, len(keys))
		for i, k := range keys {
			v, err := a.checkState.Get(k)
			if err != nil {
				return err
			}
			before[i] = v
		}
	}
	kv := a.checkState.Child()
	if _, err := a.execTx(kv, t, h, p, env); err != nil {
		return err
	}
	// A check that wrote any key beyond its declared ones is not
	// recorded (its recheck runs in full): every declared key is written
	// by a passing transfer, so more writes mean an undeclared key.
	record := keys != nil && kv.Len() == len(keys)
	kv.Write()
	if record {
		after := make([][]byte, len(keys))
		for i, k := range keys {
			after[i], _ = a.checkState.Get(k)
		}
		a.rc.effects[h] = &checkEffect{keys: keys, before: before, after: after}
	}
	return nil
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
	for i, k := range e.keys {
		v, err := a.checkState.Get(k)
		if err != nil || !bytes.Equal(v, e.before[i]) {
			return false
		}
	}
	for i, k := range e.keys {
		a.checkState.Set(k, e.after[i])
	}
	a.rc.effects[h] = e
	return true
}
