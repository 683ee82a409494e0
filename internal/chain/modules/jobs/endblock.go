package jobs

import (
	"encoding/binary"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Kinds of timed work.
const (
	dueExpiry     uint8 = 1 // Key: job id; refund it if its TTL passed unsettled
	dueCancel     uint8 = 2 // Key: job id; refund it if still open (the customer asked)
	dueWithdrawal uint8 = 3 // Key: customer ‖ coordinator; pay the announced withdrawal
)

// due is work the module does at the end of the first block whose time
// reaches the second it is filed under.
type due struct {
	_    struct{} `cbor:",toarray"`
	Kind uint8
	Key  []byte
}

var keySweptUpTo = []byte("jobs/e/last")

func keyDue(sec int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("jobs/e/t/"), uint64(sec))
}

// keyDueItem files one piece of work under its second: the second's key,
// the kind and the work's key. Each is its own record, so scheduling costs
// the same however much else falls due in that second (a batch of jobs
// created together all expire in the same second). Within a second, work
// is done in key order: expiries, then cancellations, then withdrawals
// (so a withdrawal pays out refunds that fell due with it).
func keyDueItem(sec int64, d due) []byte {
	k := keyDue(sec)
	k = append(k, d.Kind)
	return append(k, d.Key...)
}

func schedule(kv *state.Cache, sec int64, d due) error {
	kv.Set(keyDueItem(sec, d), []byte{d.Kind})
	return nil
}

// readDueItems returns the work filed under sec with keyDueItem, and
// the records' keys.
func readDueItems(r state.View, sec int64) ([]due, [][]byte, error) {
	prefix := keyDue(sec)
	var list []due
	var keys [][]byte
	err := r.Iterate(prefix, false, func(key, _ []byte) bool {
		rest := key[len(prefix):]
		if len(rest) < 1 {
			return true
		}
		list = append(list, due{Kind: rest[0], Key: append([]byte(nil), rest[1:]...)})
		keys = append(keys, append([]byte(nil), key...))
		return true
	})
	return list, keys, err
}

func readDue(r state.Reader, key []byte) ([]due, error) {
	b, err := r.Get(key)
	if err != nil || b == nil {
		return nil, err
	}
	var list []due
	return list, tx.Unmarshal(b, &list)
}

func timeUnix(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

// maxSweep bounds how many seconds one block sweeps, so a block after a
// long halt stays cheap; the rest is swept by the next blocks.
const maxSweep = 3600

// EndBlock implements module.EndBlocker: it refunds every job whose TTL
// passed unsettled, completes cancellations and pays withdrawals whose
// release delay has passed, in the order they fell due.
func (k *Keeper) EndBlock(ctx *module.Context) error {
	last, err := getInt(ctx.KV, keySweptUpTo)
	if err != nil {
		return err
	}
	now := ctx.Time.Unix()
	if last == 0 {
		// First block: nothing can have fallen due before it. (The genesis
		// time may lie long before the first block.)
		last = now - 1
	}
	end := min(now, last+maxSweep)
	for sec := last + 1; sec <= end; sec++ {
		// A list under the second's own key is how a chain before
		// per-item records filed its work.
		key := keyDue(sec)
		list, err := readDue(ctx.KV, key)
		if err != nil {
			return err
		}
		if list != nil {
			ctx.KV.Delete(key)
		}
		items, keys, err := readDueItems(ctx.KV, sec)
		if err != nil {
			return err
		}
		for _, k := range keys {
			ctx.KV.Delete(k)
		}
		for _, d := range append(list, items...) {
			if err := k.do(ctx, sec, d); err != nil {
				return err
			}
		}
	}
	if end > last {
		putInt(ctx.KV, keySweptUpTo, end)
	}
	return nil
}

// do performs one piece of timed work that fell due at sec. Work that no
// longer applies (a job settled before its TTL, a cancellation voided by
// an assignment, a withdrawal announced again later) is skipped.
func (k *Keeper) do(ctx *module.Context, sec int64, d due) error {
	switch d.Kind {
	case dueExpiry, dueCancel:
		j, err := k.Get(ctx.KV, d.Key)
		if err != nil || j == nil {
			return err
		}
		if d.Kind == dueExpiry && j.Active() {
			return k.end(ctx, j, StatusExpired)
		}
		if d.Kind == dueCancel && j.Status == StatusOpen && j.CancelAt == sec {
			return k.end(ctx, j, StatusCanceled)
		}
	case dueWithdrawal:
		if len(d.Key) != 2*address.Len {
			return nil
		}
		cust, _ := address.FromBytes(d.Key[:address.Len])
		coord, _ := address.FromBytes(d.Key[address.Len:])
		dep, err := k.Deposit(ctx.KV, cust, coord)
		if err != nil {
			return err
		}
		if dep.WithdrawAt == sec && dep.Withdrawing > 0 {
			return k.payWithdrawal(ctx, cust, coord, dep)
		}
	}
	return nil
}
