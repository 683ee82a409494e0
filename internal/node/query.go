package node

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/mempool"
	"github.com/cometbft/cometbft/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/rpc"
)

// Query errors that are not chain errors.
var (
	ErrTxNotFound    = errors.New("transaction not found")
	ErrBlockNotFound = errors.New("block not found")
	ErrTxKnown       = errors.New("transaction already submitted")
	ErrMempoolFull   = errors.New("mempool is full")
)

// Health reports liveness and the committed height.
func (n *Node) Health() rpc.Health {
	h, _ := n.app.Height()
	return rpc.Health{Status: "ok", ChainID: n.ChainID(), Height: h, NodeID: n.NodeID()}
}

// ChainInfo returns the chain's identity, parameters, supply and module
// accounts.
func (n *Node) ChainInfo() (rpc.ChainInfo, error) {
	p := n.app.Params()
	ci := rpc.ChainInfo{ChainID: n.ChainID(), MinFee: p.MinFee, BurnBps: p.BurnBps, TreasuryBps: p.TreasuryBps, Denom: coin.Denom, ModuleAccounts: []rpc.ModuleAccount{}}
	err := n.app.Committed(func(q module.Query) error {
		b := n.app.Bank()
		s, err := b.Supply(q.State)
		if err != nil {
			return err
		}
		ci.Height, ci.Supply, ci.Burned, ci.GenesisTotal = q.Height, s.Circulating, s.Burned, s.Genesis
		ci.Minted = s.Minted - s.Genesis
		for _, name := range b.ModuleAccountNames() {
			a := address.Module(name)
			bal, err := b.Balance(q.State, a)
			if err != nil {
				return err
			}
			ci.ModuleAccounts = append(ci.ModuleAccounts, rpc.ModuleAccount{Name: name, Address: a, Balance: bal})
		}
		return nil
	})
	return ci, err
}

// Account returns the committed balance of addr and the nonce its next
// transaction must carry (counting transactions waiting in the mempool).
// A module account is labelled with its name.
func (n *Node) Account(addr address.Address) (rpc.Account, error) {
	acc := rpc.Account{Address: addr}
	acc.ModuleAccount, _ = n.app.Bank().ModuleAccount(addr)
	err := n.app.Committed(func(q module.Query) error {
		var err error
		acc.Height = q.Height
		acc.Balance, err = n.app.Bank().Balance(q.State, addr)
		return err
	})
	if err != nil {
		return acc, err
	}
	acc.Nonce, err = n.app.NonceOf(addr)
	return acc, err
}

// Submit runs CheckTx on raw and, if it passes, adds it to the mempool,
// from which it is gossiped and proposed. It does not wait for a block.
func (n *Node) Submit(ctx context.Context, raw []byte) (string, error) {
	n.sigs.active.Add(1)
	defer n.sigs.active.Add(-1)
	if err := n.preVerify(raw); err != nil {
		return "", err
	}
	return n.admit(ctx, raw)
}

// SubmitMany submits txs in order, each on its own: one refused
// transaction does not stop the others. Signatures are checked first, in
// batches (one per CPU); mempool admission then runs in the given order, so
// consecutive nonces of one sender are admitted in sequence.
func (n *Node) SubmitMany(ctx context.Context, raws [][]byte) []rpc.SubmitOutcome {
	out := make([]rpc.SubmitOutcome, len(raws))
	errsPre := make([]error, len(raws))
	var fit [][]byte // those of an acceptable size, in order
	var at []int
	for i, raw := range raws {
		if len(raw) > tx.MaxSize {
			errsPre[i] = fmt.Errorf("%w: %d bytes", tx.ErrTooLarge, len(raw))
			continue
		}
		fit, at = append(fit, raw), append(at, i)
	}
	for k, err := range preVerifyParallel(n.app, fit) {
		errsPre[at[k]] = err
	}
	for i, raw := range raws {
		out[i].Hash = tx.HashString(tx.Hash(raw))
		if out[i].Err = errsPre[i]; out[i].Err == nil {
			_, out[i].Err = n.admit(ctx, raw)
		}
	}
	return out
}

func (n *Node) preVerify(raw []byte) error {
	if len(raw) > tx.MaxSize {
		return fmt.Errorf("%w: %d bytes", tx.ErrTooLarge, len(raw))
	}
	return n.sigs.check(raw)
}

// admit hands raw (already pre-verified) to the mempool and waits for its
// CheckTx.
func (n *Node) admit(ctx context.Context, raw []byte) (string, error) {
	done := make(chan *abci.ResponseCheckTx, 1)
	err := n.comet.Mempool().CheckTx(raw, func(r *abci.ResponseCheckTx) { done <- r }, mempool.TxInfo{})
	if err != nil {
		var full mempool.ErrMempoolIsFull
		switch {
		case errors.Is(err, mempool.ErrTxInCache):
			return "", fmt.Errorf("%w: %s", ErrTxKnown, tx.HashString(tx.Hash(raw)))
		case errors.As(err, &full):
			return "", fmt.Errorf("%w: %v", ErrMempoolFull, err)
		}
		return "", fmt.Errorf("node: mempool: %w", err)
	}
	select {
	case r := <-done:
		if r.Code != abci.CodeTypeOK {
			if e := errs.Lookup(r.Codespace, r.Code); e != nil {
				return "", fmt.Errorf("%w: %s", e, strings.TrimPrefix(r.Log, e.Error()+": "))
			}
			return "", fmt.Errorf("node: rejected (%s/%d): %s", r.Codespace, r.Code, r.Log)
		}
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return tx.HashString(tx.Hash(raw)), nil
}

func (n *Node) txRecord(h [32]byte) (*app.TxRecord, error) {
	var rec *app.TxRecord
	err := n.app.Committed(func(q module.Query) error {
		v, err := q.State.Get(append([]byte("x/tx/"), h[:]...))
		if err != nil || v == nil {
			return err
		}
		var tr app.TxRecord
		if err := tx.Unmarshal(v, &tr); err != nil {
			return fmt.Errorf("node: corrupt index entry: %w", err)
		}
		rec = &tr
		return nil
	})
	return rec, err
}

// Tx looks a transaction up by hash: committed or failed in a block,
// pending in the mempool, or ErrTxNotFound.
func (n *Node) Tx(hash string) (rpc.Transaction, error) {
	h, err := tx.ParseHash(hash)
	if err != nil {
		return rpc.Transaction{}, err
	}
	rec, err := n.txRecord(h)
	if err != nil {
		return rpc.Transaction{}, err
	}
	if rec == nil {
		if t := n.pendingTx(h); t != nil {
			out := n.describe(t, h)
			out.Status = "pending"
			return out, nil
		}
		return rpc.Transaction{}, fmt.Errorf("%w: %s", ErrTxNotFound, tx.HashString(h))
	}
	blk := n.comet.BlockStore().LoadBlock(rec.Height)
	if blk == nil || int(rec.Index) >= len(blk.Txs) {
		return rpc.Transaction{}, fmt.Errorf("node: block %d for %s missing from the block store", rec.Height, tx.HashString(h))
	}
	raw := blk.Txs[rec.Index]
	out := rpc.Transaction{Hash: tx.HashString(h)}
	if t, err := tx.Decode(raw); err == nil {
		out = n.describe(t, h)
	}
	out.Height, out.Index, out.Code, out.Codespace = rec.Height, rec.Index, rec.Code, rec.Codespace
	bt := blk.Time
	out.Time = &bt
	out.Raw = base64.StdEncoding.EncodeToString(raw)
	if rec.Code == 0 {
		out.Status = "committed"
	} else {
		out.Status = "failed"
		out.Error = rec.Log
	}
	return out, nil
}

func (n *Node) pendingTx(h [32]byte) *tx.Tx { return n.app.PendingTx(h) }

func (n *Node) describe(t *tx.Tx, h [32]byte) rpc.Transaction {
	out := rpc.Transaction{Hash: tx.HashString(h), From: t.Sender(), Nonce: t.Nonce, Fee: t.Fee, Type: t.Msg.Type}
	if d := n.describers[moduleOf(t.Msg.Type)]; d != nil {
		if body, err := d.Describe(t.Msg); err == nil {
			out.Body = body
		}
	}
	return out
}

// Proof returns a Merkle proof that a committed transaction is in its
// block, against the block header's data hash.
func (n *Node) Proof(hash string) (rpc.TxProof, error) {
	h, err := tx.ParseHash(hash)
	if err != nil {
		return rpc.TxProof{}, err
	}
	rec, err := n.txRecord(h)
	if err != nil {
		return rpc.TxProof{}, err
	}
	if rec == nil {
		return rpc.TxProof{}, fmt.Errorf("%w: %s (not committed)", ErrTxNotFound, tx.HashString(h))
	}
	blk := n.comet.BlockStore().LoadBlock(rec.Height)
	if blk == nil {
		return rpc.TxProof{}, fmt.Errorf("%w: %d", ErrBlockNotFound, rec.Height)
	}
	p := blk.Txs.Proof(int(rec.Index))
	out := rpc.TxProof{
		TxHash: tx.HashString(h), Height: rec.Height, Index: p.Proof.Index, Total: p.Proof.Total,
		LeafHash: hex.EncodeToString(p.Proof.LeafHash), DataHash: hex.EncodeToString(blk.DataHash),
		Raw: base64.StdEncoding.EncodeToString(p.Data),
	}
	for _, a := range p.Proof.Aunts {
		out.Aunts = append(out.Aunts, hex.EncodeToString(a))
	}
	return out, nil
}

// Block returns the block at height, or the latest committed one when
// height is 0. Heights above the app's committed height are not served:
// the block store moves before the app commits.
func (n *Node) Block(height int64) (rpc.Block, error) {
	committed, _ := n.app.Height()
	if height == 0 {
		height = committed
	}
	base := n.comet.BlockStore().Base()
	if height < 1 || height > committed || height < base {
		return rpc.Block{}, fmt.Errorf("%w: height %d (committed %d)", ErrBlockNotFound, height, committed)
	}
	blk := n.comet.BlockStore().LoadBlock(height)
	if blk == nil {
		return rpc.Block{}, fmt.Errorf("%w: height %d", ErrBlockNotFound, height)
	}
	return blockJSON(blk), nil
}

func blockJSON(b *types.Block) rpc.Block {
	out := rpc.Block{
		Height: b.Height, Hash: hex.EncodeToString(b.Hash()), Time: b.Time.UTC(),
		Proposer: hex.EncodeToString(b.ProposerAddress), NumTxs: len(b.Txs), Txs: []string{},
		AppHash: hex.EncodeToString(b.AppHash), DataHash: hex.EncodeToString(b.DataHash),
		LastBlockHash: hex.EncodeToString(b.LastBlockID.Hash), ChainID: b.ChainID,
	}
	for _, t := range b.Txs {
		out.Txs = append(out.Txs, tx.HashString(tx.Hash(t)))
	}
	return out
}

// Head returns the latest committed block's height, hash and time, from
// the block's meta: clients poll it, and loading and hashing a full block
// of thousands of transactions for it cost a busy node real CPU.
func (n *Node) Head() (rpc.Head, error) {
	h, _ := n.app.Height()
	m := n.comet.BlockStore().LoadBlockMeta(h)
	if h < 1 || m == nil {
		return rpc.Head{}, fmt.Errorf("%w: height %d (committed %d)", ErrBlockNotFound, h, h)
	}
	return rpc.Head{Height: m.Header.Height, Hash: hex.EncodeToString(m.BlockID.Hash), Time: m.Header.Time.UTC()}, nil
}

// Sync reports whether the node is catching up, and where it is.
func (n *Node) Sync() rpc.SyncStatus {
	h, ah := n.app.Height()
	peers := n.peers()
	top := highestPeer(peers)
	s := rpc.SyncStatus{
		CatchingUp:        n.catchingUp(h, top),
		LatestBlockHeight: h,
		LatestAppHash:     hex.EncodeToString(ah),
		EarliestHeight:    n.comet.BlockStore().Base(),
		NetworkHeight:     max(h, top),
		BlocksBehind:      max(top-h, 0),
		Peers:             len(peers),
		PeerList:          peers,
	}
	if m := n.comet.BlockStore().LoadBlockMeta(h); m != nil {
		s.LatestBlockTime = m.Header.Time.UTC()
	}
	if pub, err := n.comet.PrivValidator().GetPubKey(); err == nil {
		// Proof of authority: the validator set is the genesis set.
		for _, v := range n.gen.Validators {
			if v.Address.String() == pub.Address().String() {
				s.Validator = true
			}
		}
	}
	return s
}

// Transactions lists the newest transactions of addr, at most limit.
func (n *Node) Transactions(addr address.Address, limit int) (rpc.TxList, error) {
	out := rpc.TxList{Address: addr, Transactions: []rpc.Transaction{}}
	var hashes [][32]byte
	err := n.app.Committed(func(q module.Query) error {
		return q.State.Iterate(append([]byte("x/a/"), addr[:]...), true, func(_, v []byte) bool {
			var h [32]byte
			copy(h[:], v)
			hashes = append(hashes, h)
			return len(hashes) < limit
		})
	})
	if err != nil {
		return out, err
	}
	for _, h := range hashes {
		t, err := n.Tx(tx.HashString(h))
		if err != nil {
			return out, err
		}
		out.Transactions = append(out.Transactions, t)
	}
	return out, nil
}

// WaitHeight blocks until the app has committed height h or ctx ends.
func (n *Node) WaitHeight(ctx context.Context, h int64) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if cur, _ := n.app.Height(); cur >= h {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
