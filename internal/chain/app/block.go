package app

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// blockExec is a block between FinalizeBlock and Commit.
type blockExec struct {
	height  int64
	time    time.Time
	kv      *state.Cache
	sorted  []state.KV // kv's writes in key order (the app hash's input, and Commit's)
	appHash []byte
	hashes  [][32]byte
	index   []state.KV       // index writes (not hashed)
	fees    rewards.FeeSplit // how the block's fees were split
	// outcomes are the transactions' results for the BlockObserver
	// (filled only when there is one).
	outcomes []TxOutcome
}

// TxRecord is the index entry of a transaction in a block.
type TxRecord struct {
	_         struct{} `cbor:",toarray"`
	Height    int64
	Index     uint32
	Code      uint32
	Codespace string
	Log       string
}

func keyTxIndex(h [32]byte) []byte { return append([]byte("x/tx/"), h[:]...) }

// keyAcctIndex orders an account's transactions by height and position.
func keyAcctIndex(a address.Address, height int64, idx uint32) []byte {
	k := make([]byte, 0, 5+address.Len+12)
	k = append(k, "x/a/"...)
	k = append(k, a[:]...)
	k = binary.BigEndian.AppendUint64(k, uint64(height))
	return binary.BigEndian.AppendUint32(k, idx)
}

// FinalizeBlock implements abci.Application: it executes the block's
// transactions in order, distributes fees and computes the app hash. The
// writes stay in memory until Commit.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if req.Height != a.nextHeight() {
		return nil, fmt.Errorf("app: FinalizeBlock height %d, last committed %d", req.Height, a.height)
	}
	a.work.begin()
	var base state.Reader = a.store
	if a.genesis != nil {
		base = a.genesis
	}
	b := &blockExec{height: req.Height, time: req.Time, kv: state.NewCache(base), hashes: make([][32]byte, len(req.Txs))}
	txs := a.decodeBlock(req.Txs, b.hashes)
	var proposer address.Address
	if len(req.ProposerAddress) > 0 {
		var err error
		if proposer, err = a.rewardAddress(b.kv, req.ProposerAddress); err != nil {
			return nil, fmt.Errorf("app: proposer %X: %w", req.ProposerAddress, err)
		}
	}

	results := make([]*abci.ExecTxResult, len(req.Txs))
	var fees coin.Amount
	for i := range req.Txs {
		h := b.hashes[i]
		var err error
		var touched []address.Address
		var notes []string
		if txs[i].err != nil {
			err = txs[i].err
		} else {
			kv := b.kv.Child()
			ctx, e := a.execTx(kv, txs[i].tx, h, a.params, execEnv{height: req.Height, time: req.Time, block: b, feesPaid: &fees, proposer: proposer})
			if err = e; err == nil {
				kv.Write()
				touched = append(touched, txs[i].tx.Sender())
				touched = append(touched, ctx.Touched()...)
				notes = ctx.Notes()
			}
		}
		cs, code, log := errs.ABCI(err)
		if len(notes) > 0 {
			log = strings.Join(notes, "; ")
		}
		results[i] = &abci.ExecTxResult{Code: code, Codespace: cs, Log: log}
		if a.observer != nil {
			o := TxOutcome{Codespace: cs, Code: code}
			if txs[i].tx != nil {
				o.Type = txs[i].tx.Msg.Type
			}
			b.outcomes = append(b.outcomes, o)
		}
		rec, _ := tx.Marshal(TxRecord{Height: req.Height, Index: uint32(i), Code: code, Codespace: cs, Log: log})
		b.index = append(b.index, state.KV{Key: keyTxIndex(h), Value: rec})
		if txs[i].tx != nil && err != nil {
			touched = append(touched, txs[i].tx.Sender())
		}
		// One index entry per account; the list is a handful long (sender,
		// recipient), so a scan dedupes it without a map per transaction.
		for j, ad := range touched {
			if !slices.Contains(touched[:j], ad) {
				b.index = append(b.index, state.KV{Key: keyAcctIndex(ad, req.Height, uint32(i)), Value: h[:]})
			}
		}
	}
	ectx := &module.Context{KV: b.kv, Height: req.Height, Time: req.Time, ChainID: a.chainID, Proposer: proposer, BlockHash: req.Hash}
	if err := a.misbehavior(ectx, req.Misbehavior); err != nil {
		return nil, err
	}
	for _, m := range a.order {
		if eb, ok := m.(module.EndBlocker); ok {
			if err := eb.EndBlock(ectx); err != nil {
				return nil, fmt.Errorf("app: end block of %s: %w", m.Name(), err)
			}
		}
	}
	if err := a.distributeFees(b, fees, proposer); err != nil {
		return nil, err
	}
	b.sorted = b.kv.Sorted()
	b.appHash = state.ChainHash(a.appHash, req.Height, b.sorted)
	a.block = b
	return &abci.ResponseFinalizeBlock{TxResults: results, AppHash: b.appHash}, nil
}

// distributeFees splits the block's fees: the transaction fees charged
// during the block and the protocol fees modules sent to the fee
// collector. BurnBps of them are burned, TreasuryBps go to the treasury,
// the rest to the proposer's reward account (rewards.SplitFees); with no
// proposer known, its share goes to the treasury too. The collector is
// empty afterwards.
func (a *App) distributeFees(b *blockExec, fees coin.Amount, proposer address.Address) error {
	if err := a.bank.CollectFees(b.kv, fees); err != nil {
		return err
	}
	collector := a.bank.Collector()
	total, err := a.bank.Balance(b.kv, collector)
	if err != nil || total == 0 {
		return err
	}
	s := rewards.SplitFees(total, a.params.BurnBps, a.params.TreasuryBps)
	toTreasury := s.Treasury
	if proposer.IsZero() {
		toTreasury += s.Proposer
	} else if err := a.bank.Send(b.kv, collector, proposer, s.Proposer); err != nil {
		return err
	}
	if err := a.treasury.FundTreasury(b.kv, collector, toTreasury); err != nil {
		return err
	}
	if err := a.bank.Burn(b.kv, collector, s.Burn); err != nil {
		return err
	}
	b.fees = s
	return nil
}

// misbehavior passes CometBFT's evidence of duplicate votes to the modules
// that act on it (staking slashes the validator's stake).
func (a *App) misbehavior(ctx *module.Context, ev []abci.Misbehavior) error {
	for _, e := range ev {
		if e.Type != abci.MisbehaviorType_DUPLICATE_VOTE {
			continue
		}
		v, err := a.rewardAddress(ctx.KV, e.Validator.Address)
		if err != nil {
			return fmt.Errorf("app: misbehavior of %X: %w", e.Validator.Address, err)
		}
		for _, m := range a.order {
			if mb, ok := m.(module.Misbehavior); ok {
				if err := mb.Misbehaved(ctx, v, "duplicate_vote"); err != nil {
					return fmt.Errorf("app: misbehavior in %s: %w", m.Name(), err)
				}
			}
		}
	}
	return nil
}

func (a *App) rewardAddress(r state.Reader, proposer []byte) (address.Address, error) {
	v, err := r.Get(keyReward(proposer))
	if err != nil {
		return address.Address{}, err
	}
	if v != nil {
		return address.FromBytes(v)
	}
	return address.FromBytes(proposer)
}

type decoded struct {
	tx  *tx.Tx
	err error
}

// decodeBlock decodes the block's transactions and verifies the signatures
// that this node has not verified before, in batches, one per CPU.
func (a *App) decodeBlock(raws [][]byte, hashes [][32]byte) []decoded {
	out := make([]decoded, len(raws))
	var unverified []int
	for i, raw := range raws {
		hashes[i] = tx.Hash(raw)
		t := a.verified.get(hashes[i])
		if t == nil {
			t = a.preverified.take(hashes[i])
		}
		if t != nil {
			out[i].tx = t
			continue
		}
		unverified = append(unverified, i)
	}
	if len(unverified) == 0 {
		return out
	}
	var wg sync.WaitGroup
	n := workers()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var txs []*tx.Tx
			var at []int
			for j := w; j < len(unverified); j += n {
				i := unverified[j]
				t, err := tx.Decode(raws[i])
				if err != nil {
					out[i].err = err
					continue
				}
				txs, at = append(txs, t), append(at, i)
			}
			if len(txs) == 0 {
				return
			}
			for k, err := range tx.VerifyAll(a.keys, txs) {
				// t is kept even on a bad signature, so the failure is
				// indexed under the claimed sender; err stops execution.
				out[at[k]].tx, out[at[k]].err = txs[k], err
			}
		}(w)
	}
	wg.Wait()
	return out
}

// Commit implements abci.Application: it writes the block's state, its
// index entries, height and app hash in one synced batch, then resets the
// mempool's view to the new state.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	a.mu.Lock()
	b := a.block
	if b == nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("app: Commit without FinalizeBlock")
	}
	writes := b.sorted // sorted once, for the app hash
	chainID := ""
	if a.genesis != nil {
		// genesis writes are part of the first block's batch
		writes = append(a.genesis.Sorted(), writes...)
		chainID = a.chainID
	}
	writes = append(writes, b.index...)
	if err := a.store.Commit(b.height, b.time, b.appHash, chainID, writes); err != nil {
		a.mu.Unlock()
		return nil, err
	}
	a.height, a.blockTime, a.appHash, a.block, a.genesis = b.height, b.time, b.appHash, nil, nil
	var broken error
	if a.audit {
		broken = auditLocked(a).Err()
	}
	a.mu.Unlock()
	if broken != nil {
		// The block is committed; stopping here halts the node before it
		// builds on a state whose books do not balance.
		a.log.Error("invariant broken", "height", b.height, "err", broken)
		return nil, broken
	}

	for _, h := range b.hashes {
		a.verified.remove(h)
	}
	a.checkMu.Lock()
	a.checkState = state.NewCache(a.store)
	a.rc.rotate()
	// A new recheck pass follows; what is parked now waited a whole pass.
	a.parkedBefore = make(map[[32]byte]bool, len(a.parked))
	for _, list := range a.parked {
		for _, p := range list {
			a.parkedBefore[p.hash] = true
		}
	}
	a.parked = map[address.Address][]parkedTx{}
	a.checkMu.Unlock()
	a.work.end(len(b.hashes))
	if a.observer != nil {
		a.observer.BlockCommitted(b.height, b.outcomes)
	}
	return &abci.ResponseCommit{}, nil
}
