package node

import (
	"encoding/hex"
	"fmt"

	"github.com/cometbft/cometbft/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/rpc"
)

// The explorer's queries (rpc.ExplorerBackend): what a block explorer needs
// in one request each instead of one per transaction or per block.
var _ rpc.ExplorerBackend = (*Node)(nil)

// BlockTransactions returns up to limit of the block's transactions from
// index offset, decoded as Tx shows them (without the raw bytes). Like
// Block, it serves only heights the app has committed.
func (n *Node) BlockTransactions(height int64, offset, limit int) (rpc.BlockTxs, error) {
	committed, _ := n.app.Height()
	if height < 1 || height > committed || height < n.comet.BlockStore().Base() {
		return rpc.BlockTxs{}, fmt.Errorf("%w: height %d (committed %d)", ErrBlockNotFound, height, committed)
	}
	blk := n.comet.BlockStore().LoadBlock(height)
	if blk == nil {
		return rpc.BlockTxs{}, fmt.Errorf("%w: height %d", ErrBlockNotFound, height)
	}
	out := rpc.BlockTxs{Height: height, Total: len(blk.Txs), Offset: offset, Transactions: []rpc.Transaction{}}
	bt := blk.Time.UTC()
	for i := offset; i < len(blk.Txs) && i < offset+limit; i++ {
		raw := blk.Txs[i]
		h := tx.Hash(raw)
		t := rpc.Transaction{Hash: tx.HashString(h)}
		if d, err := tx.Decode(raw); err == nil {
			t = n.describe(d, h)
		}
		rec, err := n.txRecord(h)
		if err != nil {
			return out, err
		}
		t.Height, t.Index, t.Time, t.Status = height, uint32(i), &bt, "committed"
		if rec != nil && rec.Code != 0 {
			t.Code, t.Codespace, t.Status, t.Error = rec.Code, rec.Codespace, "failed", rec.Log
		}
		out.Transactions = append(out.Transactions, t)
	}
	return out, nil
}

// Validators returns the validator set with, for each, how many of the
// last window committed blocks it signed (from each block's commit) and
// proposed. Proof of authority: the set is genesis's, as in Sync.
func (n *Node) Validators(window int) (rpc.ValidatorSet, error) {
	top, _ := n.app.Height()
	bs := n.comet.BlockStore()
	from := max(top-int64(window)+1, bs.Base(), 1)
	out := rpc.ValidatorSet{Height: top, Validators: []rpc.Validator{}}
	signed, proposed := map[string]int{}, map[string]int{}
	for h := from; h <= top; h++ {
		// A block's commit is stored with the next block; the newest
		// block's is the node's own seen commit.
		c := bs.LoadBlockCommit(h)
		if c == nil {
			c = bs.LoadSeenCommit(h)
		}
		m := bs.LoadBlockMeta(h)
		if c == nil || m == nil {
			continue
		}
		out.Window++
		for _, s := range c.Signatures {
			if s.BlockIDFlag == types.BlockIDFlagCommit {
				signed[s.ValidatorAddress.String()]++
			}
		}
		proposed[m.Header.ProposerAddress.String()]++
	}
	self := n.ValidatorAddress()
	for _, v := range n.gen.Validators {
		cons := v.Address.String()
		var acct address.Address
		copy(acct[:], v.Address)
		out.Validators = append(out.Validators, rpc.Validator{
			Address: acct, ConsAddr: hex.EncodeToString(v.Address), PubKey: hex.EncodeToString(v.PubKey.Bytes()),
			Power: v.Power, Name: v.Name, Signed: signed[cons], Proposed: proposed[cons],
			ThisNode: hex.EncodeToString(v.Address) == self,
		})
	}
	return out, nil
}
