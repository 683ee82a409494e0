package app

import (
	"context"
	"sort"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// PrepareProposal implements abci.Application. CometBFT's mempool can hold
// two transactions of one sender in the opposite order from the one in
// which CheckTx accepted them (it inserts after releasing the ABCI lock), so
// the proposal puts each sender's transactions back in nonce order, in the
// positions that sender's transactions occupy; other senders' transactions
// keep their places. Then it takes as many as fit in MaxTxBytes.
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
	for _, s := range order {
		idx := slots[s]
		if len(idx) < 2 {
			continue
		}
		sorted := make([]entry, len(idx))
		for k, i := range idx {
			sorted[k] = entries[i]
		}
		sort.SliceStable(sorted, func(x, y int) bool { return sorted[x].nonce < sorted[y].nonce })
		for k, i := range idx {
			out[i] = sorted[k].raw
		}
	}
	var total int64
	for i, raw := range out {
		total += int64(len(raw))
		if total > req.MaxTxBytes {
			out = out[:i]
			break
		}
	}
	return &abci.ResponsePrepareProposal{Txs: out}, nil
}
