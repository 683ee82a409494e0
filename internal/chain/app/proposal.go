package app

import (
	"context"
	"sort"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// PrepareProposal implements abci.Application. CometBFT's mempool can hold
// two transactions of one sender in the opposite order from the one in
// which CheckTx accepted them (it inserts after releasing the ABCI lock), so
// the proposal puts each sender's transactions back in nonce order, in the
// positions that sender's transactions occupy; other senders' transactions
// keep their places. A transaction whose nonce does not follow its sender's
// committed nonce and the ones before it in the proposal (a recheck kept it
// while its predecessor was missing, or the nonce is already used) is left
// out: it would only fail in the block. Then it takes as many as fit in
// MaxTxBytes and, with WithWorkBudget, in the work budget (work.go).
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	type entry struct {
		raw   []byte
		nonce uint64
	}
	slots := map[address.Address][]int{}
	entries := make([]entry, len(req.Txs))
	var order []address.Address
	for i, raw := range req.Txs {
		entries[i].raw = raw
		t := a.verified.get(tx.Hash(raw))
		if t == nil {
			var err error
			if t, err = tx.Decode(raw); err != nil {
				continue // left where it is; FinalizeBlock refuses it
			}
		}
		s := t.Sender()
		if _, seen := slots[s]; !seen {
			order = append(order, s)
		}
		slots[s] = append(slots[s], i)
		entries[i].nonce = t.Nonce
	}
	out := make([][]byte, len(req.Txs))
	for i := range entries {
		out[i] = entries[i].raw
	}
	err := a.Committed(func(q module.Query) error {
		r := q.State
		for _, s := range order {
			idx := slots[s]
			sorted := make([]entry, len(idx))
			for k, i := range idx {
				sorted[k] = entries[i]
			}
			sort.SliceStable(sorted, func(x, y int) bool { return sorted[x].nonce < sorted[y].nonce })
			next, err := getUint(r, keyNonce(s))
			if err != nil {
				return err
			}
			k := 0
			for _, e := range sorted {
				if e.nonce == next {
					out[idx[k]] = e.raw
					k++
					next++
				}
			}
			for _, i := range idx[k:] {
				out[i] = nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var total int64
	kept := out[:0]
	limit := a.work.maxTxs()
	for _, raw := range out {
		if raw == nil {
			continue
		}
		total += int64(len(raw))
		if total > req.MaxTxBytes || (limit > 0 && len(kept) >= limit) {
			break
		}
		kept = append(kept, raw)
	}
	return &abci.ResponsePrepareProposal{Txs: kept}, nil
}
