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

func schedule(kv *state.Cache, sec int64, d due) error {
	list, err := readDue(kv, keyDue(sec))
	if err != nil {
		return err
	}
	b, err := tx.Marshal(append(list, d))
	if err != nil {
		return err
	}
	kv.Set(keyDue(sec), b)
	return nil
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
		key := keyDue(sec)
		list, err := readDue(ctx.KV, key)
		if err != nil {
			return err
		}
		for _, d := range list {
			if err := k.do(ctx, sec, d); err != nil {
				return err
			}
		}
		if list != nil {
			ctx.KV.Delete(key)
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
