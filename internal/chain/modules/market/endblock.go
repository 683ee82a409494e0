package market

import (
	"encoding/binary"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// Kinds of timed work.
const (
	dueBidExpiry      uint8 = 1 // Key: bid id; return its deposit if still open
	duePayout         uint8 = 2 // Key: payout id; release it if still held
	dueDisputeTimeout uint8 = 3 // Key: payout id; release it if still disputed
	dueClose          uint8 = 4 // Key: agreement id; refund the rest of a closing agreement
	dueLeaseEnd       uint8 = 5 // Key: agreement id; pay a lease's last hour, complete it
)

// due is work done at the end of the first block whose time reaches the
// second it is filed under (the jobs module keeps its own the same way).
type due struct {
	_    struct{} `cbor:",toarray"`
	Kind uint8
	Key  []byte
}

var keySweptUpTo = []byte("market/e/last")

// keyDue is the prefix of the work filed under second sec: one key per
// piece of work (kind, then id), so that filing is constant work however
// many pieces share a second (a block's bids all expire in the same one).
func keyDue(sec int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("market/e/t/"), uint64(sec))
}

func schedule(kv *state.Cache, sec int64, d due) error {
	kv.Set(cat(keyDue(sec), []byte{d.Kind}, d.Key), []byte{1})
	return nil
}

// readDue lists the work filed under prefix (one second's), in key order.
func readDue(r state.View, prefix []byte) ([]due, [][]byte, error) {
	var list []due
	var keys [][]byte
	err := r.Iterate(prefix, false, func(k, _ []byte) bool {
		rest := k[len(prefix):]
		if len(rest) > 0 {
			list = append(list, due{Kind: rest[0], Key: append([]byte(nil), rest[1:]...)})
			keys = append(keys, append([]byte(nil), k...))
		}
		return true
	})
	return list, keys, err
}

// maxSweep bounds the seconds one block sweeps, so that a block after a
// long halt stays cheap; the next blocks sweep the rest.
const maxSweep = 3600

// EndBlock implements module.EndBlocker: it pays providers for bound jobs
// that settled in this block (the jobs module ends its block first), then
// does the work that fell due: bids expire, payouts are released after
// their dispute window, unresolved disputes time out, customers' closes
// take effect and leases end.
func (k *Keeper) EndBlock(ctx *module.Context) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if err := k.deliveries(ctx, p); err != nil {
		return err
	}
	last, err := getUint(ctx.KV, keySweptUpTo)
	if err != nil {
		return err
	}
	now := ctx.Time.Unix()
	from := int64(last)
	if last == 0 {
		from = now - 1 // first block: nothing fell due before it
	}
	end := min(now, from+maxSweep)
	for sec := from + 1; sec <= end; sec++ {
		list, keys, err := readDue(ctx.KV, keyDue(sec))
		if err != nil {
			return err
		}
		for i, d := range list {
			if err := k.do(ctx, p, sec, d); err != nil {
				return err
			}
			ctx.KV.Delete(keys[i])
		}
	}
	if end > from {
		putUint(ctx.KV, keySweptUpTo, uint64(end))
	}
	return nil
}

// do performs one piece of timed work. Work that no longer applies (a bid
// accepted before it expired, a payout disputed, a dispute resolved, an
// agreement already ended) is skipped.
func (k *Keeper) do(ctx *module.Context, p Params, sec int64, d due) error {
	id := string(d.Key)
	switch d.Kind {
	case dueBidExpiry:
		b, err := k.Bid(ctx.KV, id)
		if err != nil || b == nil || b.Status != BidOpen || b.Expires != sec {
			return err
		}
		return k.endBid(ctx, id, BidExpired)
	case duePayout, dueDisputeTimeout:
		po, err := k.Payout(ctx.KV, id)
		if err != nil || po == nil {
			return err
		}
		if d.Kind == duePayout && po.Status == PayoutHeld && po.ReleaseAt == sec {
			return k.release(ctx, p, po, "")
		}
		if d.Kind == dueDisputeTimeout && po.Status == PayoutDisputed && po.DisputeAt+p.DisputeTimeout == sec {
			return k.release(ctx, p, po, "dispute timed out")
		}
	case dueClose, dueLeaseEnd:
		a, err := k.Agreement(ctx.KV, id)
		if err != nil || a == nil || !a.Live() {
			return err
		}
		if d.Kind == dueClose && a.Status == AgreementClosing && a.CloseAt == sec {
			return k.closeNow(ctx, p, a)
		}
		if d.Kind == dueLeaseEnd && a.Unit == UnitHour && a.Start+int64(a.Units)*secondsInHour == sec {
			if err := k.draw(ctx, p, a, KindLease, nil, claimable(a, sec)); err != nil {
				return err
			}
			return k.store(ctx, a)
		}
	}
	return nil
}
