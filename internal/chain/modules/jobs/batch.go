package jobs

import (
	"crypto/ed25519"
	"fmt"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TypeBatch is a batch of jobs messages in one transaction: a coordinator
// creates, assigns and settles many jobs with one signature, one nonce and
// one fee, and the chain checks the batch's receipts as one batch of
// signatures (about half the cost of checking each).
const TypeBatch = "jobs/batch"

// MaxBatch is the most messages one batch holds (a transaction's size,
// 64 KiB, bounds it first for settlements: about 200 receipts).
const MaxBatch = 1000

// MsgBatch is a batch: Msgs are jobs messages other than batches, run in
// order, each as if it were its own transaction of the same signer.
type MsgBatch struct {
	_    struct{} `cbor:",toarray"`
	Msgs []tx.Msg
}

// NewBatchMsg builds a batch of jobs messages.
func NewBatchMsg(msgs []tx.Msg) tx.Msg {
	return must(tx.NewMsg(TypeBatch, MsgBatch{Msgs: msgs}))
}

// Batchable reports whether a message of type typ may go in a batch.
func Batchable(typ string) bool {
	return strings.HasPrefix(typ, Name+"/") && typ != TypeBatch
}

// batch runs a batch's messages in order. Each item is applied or skipped
// on its own, exactly as the same message would be in a transaction of
// its own (a skipped item changes nothing; the result log says which were
// skipped and why), so one job that expired since the batch was built
// does not hold back the settlement of the others. The batch fails, and
// changes nothing, when it is malformed or when no item applies; the
// error is then the first item's.
func (k *Keeper) batch(ctx *module.Context, p Params, msg tx.Msg) error {
	var m MsgBatch
	if err := msg.DecodeBody(&m); err != nil {
		return err
	}
	switch {
	case len(m.Msgs) == 0:
		return fmt.Errorf("%w: empty", ErrBatch)
	case len(m.Msgs) > MaxBatch:
		return fmt.Errorf("%w: %d messages, at most %d", ErrBatch, len(m.Msgs), MaxBatch)
	}
	for i, it := range m.Msgs {
		if !Batchable(it.Type) {
			return fmt.Errorf("%w: item %d is %q: a batch holds jobs messages other than batches", ErrBatch, i, it.Type)
		}
	}
	verdicts := k.verifyReceipts(ctx, m.Msgs)
	applied := 0
	var first error
	var skipped []string
	for i, it := range m.Msgs {
		sub := ctx.Sub(ctx.KV.Child())
		if err := k.exec(sub, p, it, verdicts[i]); err != nil {
			if first == nil {
				first = fmt.Errorf("%w (batch item %d of %d; none applied)", err, i, len(m.Msgs))
			}
			if len(skipped) < 20 {
				skipped = append(skipped, fmt.Sprintf("item %d (%s): %v", i, it.Type, err))
			}
			continue
		}
		sub.KV.Write()
		ctx.Keep(sub)
		applied++
	}
	if applied == 0 {
		return first
	}
	if n := len(m.Msgs) - applied; n > 0 {
		ctx.Note(fmt.Sprintf("jobs/batch: %d of %d items applied, %d skipped: %s", applied, len(m.Msgs), n, strings.Join(skipped, "; ")))
	}
	return nil
}

// verifyReceipts checks the signatures of the batch's settlement receipts
// together, each against the registered key of the miner it names (the
// registry cannot change within a batch of jobs messages). verdicts[i] is
// nil for an item that is not a well-formed settlement of a registered
// miner: its settlement then checks it alone, with the same outcome.
func (k *Keeper) verifyReceipts(ctx *module.Context, msgs []tx.Msg) []*bool {
	verdicts := make([]*bool, len(msgs))
	var items []tx.Signed
	var at []int
	for i, it := range msgs {
		if it.Type != TypeSettle {
			continue
		}
		var m MsgSettle
		if it.DecodeBody(&m) != nil || m.Receipt.CheckShape() != nil {
			continue
		}
		r := &m.Receipt
		ma, err := address.FromBytes(r.Miner)
		if err != nil {
			continue
		}
		mi, err := k.miners.Get(ctx.KV, ma)
		if err != nil || mi == nil || len(mi.PubKey) != ed25519.PublicKeySize || address.FromPubKey(mi.PubKey) != ma {
			continue
		}
		items = append(items, tx.Signed{PubKey: mi.PubKey, Msg: r.SignBytes(), Sig: r.Sig})
		at = append(at, i)
	}
	if len(items) == 0 {
		return verdicts
	}
	for j, ok := range k.receipts.VerifyBatch(items) {
		v := ok
		verdicts[at[j]] = &v
	}
	return verdicts
}

// describeBatch shows a batch as its items, each with its type.
func (k *Keeper) describeBatch(msg tx.Msg) (any, error) {
	var m MsgBatch
	if err := msg.DecodeBody(&m); err != nil {
		return nil, err
	}
	items := make([]any, 0, len(m.Msgs))
	for _, it := range m.Msgs {
		if it.Type == TypeBatch {
			return nil, fmt.Errorf("%w: nested batch", ErrBatch)
		}
		d, err := k.Describe(it)
		if err != nil {
			return nil, err
		}
		items = append(items, map[string]any{"type": it.Type, "body": d})
	}
	return map[string]any{"items": items}, nil
}
