// Package app is the AITBC chain application: the deterministic state
// machine that CometBFT drives over ABCI 2.0. It checks and executes
// transactions (signature, chain id, nonce, fee, then the message's module),
// collects fees (transaction fees and the protocol fees modules collect,
// split at the end of each block: a share burned, a share to the treasury,
// the rest to the block's proposer),
// keeps state in Pebble with one atomic batch per block, and indexes
// transactions by hash and by account in its own store, outside the app hash.
// It knows modules only through internal/chain/module: the list is in
// internal/chain/modules. It runs every module's invariants on demand
// (Audit) and, when asked, after every block.
//
// Imported by the node package, which embeds it in a CometBFT node, and by
// tests. Nothing here reads the clock, the network or randomness.
package app

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Version is reported to CometBFT in Info.
const Version = "0.1.0"

// AppVersion is the application protocol version.
const AppVersion uint64 = 2

// StateVersion numbers the layout of the state. A store written by a build
// with another layout is refused at start with a clear message instead of
// failing later on a record it cannot decode. Version 2: money held by
// modules sits in module accounts; deposits and cancellations have a
// release delay.
const StateVersion = 2

var (
	keyParams       = []byte("app/params")
	keyNonce        = func(a address.Address) []byte { return append([]byte("auth/n/"), a[:]...) }
	keyReward       = func(cons []byte) []byte { return append([]byte("app/reward/"), cons...) }
	keyStateVersion = []byte("app/state_version")
)

// ErrStateVersion means the store was written by a build with another
// state layout.
var ErrStateVersion = errors.New("app: state written by another version of AITBC")

// App is the ABCI application.
type App struct {
	abci.BaseApplication

	log      *slog.Logger
	store    *state.Store
	chainID  string
	bank     *bank.Keeper
	treasury Treasury
	handlers map[string]module.Handler // by module name
	order    []module.Module           // the modules' order, for genesis and EndBlock
	audit    bool                      // run the invariants after every block
	observer BlockObserver             // told each committed block's outcomes; nil: none

	// mu serialises consensus calls (FinalizeBlock, Commit) and guards
	// the fields below it. Readers of committed state take it for reading.
	mu        sync.RWMutex
	params    Params
	height    int64
	blockTime time.Time // of the last committed block
	appHash   []byte
	block     *blockExec // between FinalizeBlock and Commit
	genesis   *state.Cache
	first     int64 // the first block's height when not 1 (a chain started from an export)

	// checkMu guards checkState, the mempool's view: committed state plus
	// every transaction CheckTx accepted since the last commit.
	checkMu    sync.Mutex
	checkState *state.Cache
	// parked: transactions a recheck found ahead of their sender's nonce,
	// by sender (see checkLocked); parkedBefore: those still parked when
	// the previous recheck pass ended.
	parked       map[address.Address][]parkedTx
	parkedBefore map[[32]byte]bool
	// rc lets a recheck keep the verdict of a transaction whose reads
	// did not change (recheck.go).
	rc recheckState

	verified    *txCache     // txs the mempool holds (CheckTx accepted them)
	preverified *txCache     // txs whose signature was checked ahead of CheckTx
	keys        *tx.Verifier // expanded public keys of recent senders
	work        *workMeter   // sizes proposals by work; nil: by bytes only
}

var _ abci.Application = (*App)(nil)

// Treasury takes the treasury's share of a block's fees (the rewards
// module).
type Treasury interface {
	FundTreasury(kv *state.Cache, from address.Address, amount coin.Amount) error
}

// Option configures an App.
type Option func(*App)

// WithInvariants makes Commit run every module's invariants on the state
// it has just committed and fail (halting the node) when one is broken.
// Tests and devnets use it; it reads every record, so a busy production
// node runs `aitbc chain audit` instead.
func WithInvariants() Option { return func(a *App) { a.audit = true } }

// TxOutcome is what a committed block did with one transaction: its
// message type ("" when it could not be decoded) and its ABCI result
// (code 0 is success).
type TxOutcome struct {
	Type      string
	Codespace string
	Code      uint32
}

// BlockObserver learns each committed block's transaction outcomes (the
// node's metrics). It is called after Commit has released the app's
// locks, once per block, in height order; it must not block.
type BlockObserver interface {
	BlockCommitted(height int64, txs []TxOutcome)
}

// WithBlockObserver makes Commit report every block to o.
func WithBlockObserver(o BlockObserver) Option { return func(a *App) { a.observer = o } }

// New returns the application over store for the given chain. The chain id
// comes from the genesis document, since FinalizeBlock does not carry it.
func New(store *state.Store, chainID string, log *slog.Logger, opts ...Option) (*App, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stored, err := store.ChainID()
	if err != nil {
		return nil, err
	}
	if stored != "" && stored != chainID {
		return nil, fmt.Errorf("app: store belongs to chain %q, genesis says %q", stored, chainID)
	}
	h, ah, err := store.Height()
	if err != nil {
		return nil, err
	}
	set := modules.New()
	a := &App{
		log:         log,
		store:       store,
		chainID:     chainID,
		bank:        set.Bank,
		treasury:    set.Rewards,
		handlers:    map[string]module.Handler{},
		order:       set.All,
		height:      h,
		appHash:     ah,
		verified:    newTxCache(200_000, false),
		preverified: newTxCache(50_000, true),
		keys:        tx.NewVerifier(10_000),
		rc:          newRecheckState(),
	}
	for _, o := range opts {
		o(a)
	}
	for _, m := range set.All {
		if hd, ok := m.(module.Handler); ok {
			a.handlers[m.Name()] = hd
		}
	}
	if h > 0 {
		if v, err := getUint(store, keyStateVersion); err != nil {
			return nil, err
		} else if v != StateVersion {
			return nil, fmt.Errorf("%w: state version %d, this build reads %d: start a new chain (delete the node's data, e.g. ~/.aitbc/chain for the devnet)", ErrStateVersion, v, StateVersion)
		}
		p, err := loadParams(store)
		if err != nil {
			return nil, err
		}
		a.params = p
		if a.blockTime, err = store.BlockTime(); err != nil {
			return nil, err
		}
	}
	a.checkState = state.NewCache(store)
	a.parked, a.parkedBefore = map[address.Address][]parkedTx{}, map[[32]byte]bool{}
	return a, nil
}

// Bank returns the bank keeper.
func (a *App) Bank() *bank.Keeper { return a.bank }

// Modules returns the chain's modules in their order.
func (a *App) Modules() []module.Module { return a.order }

// ChainID returns the chain id.
func (a *App) ChainID() string { return a.chainID }

// Params returns the chain parameters.
func (a *App) Params() Params {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.params
}

// Info implements abci.Application: CometBFT replays blocks above the
// height reported here, and nothing at or below it.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return &abci.ResponseInfo{
		Data:             "aitbc",
		Version:          Version,
		AppVersion:       AppVersion,
		LastBlockHeight:  a.height,
		LastBlockAppHash: a.appHash,
	}, nil
}

// InitChain implements abci.Application: it funds the genesis accounts.
// The writes are committed with the first block.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if req.ChainId != a.chainID {
		return nil, fmt.Errorf("app: InitChain for chain %q, app configured for %q", req.ChainId, a.chainID)
	}
	g, err := ParseGenesis(req.AppStateBytes)
	if err != nil {
		return nil, err
	}
	kv := state.NewCache(a.store)
	gctx := &module.Context{KV: kv, ChainID: a.chainID, Time: req.Time}
	if g.State != nil {
		if err := a.importState(gctx, g, req.InitialHeight); err != nil {
			return nil, err
		}
	}
	for _, acct := range g.Accounts {
		if name, ok := a.bank.ModuleAccount(acct.Address); ok {
			return nil, fmt.Errorf("app: genesis account %s is the module account %s", acct.Address, name)
		}
		if err := a.bank.Mint(kv, acct.Address, acct.Balance); err != nil {
			return nil, fmt.Errorf("app: genesis account %s: %w", acct.Address, err)
		}
	}
	for _, v := range g.Validators {
		cons, _ := hex.DecodeString(v.ConsensusAddress)
		kv.Set(keyReward(cons), v.RewardAddress[:])
	}
	for name := range g.Modules {
		if !slices.ContainsFunc(a.order, func(m module.Module) bool { return m.Name() == name }) {
			return nil, fmt.Errorf("app: genesis has parameters for %q, which is not a module of this chain", name)
		}
	}
	for _, m := range a.order {
		if gm, ok := m.(module.Genesis); ok && g.State == nil {
			var raw []byte
			if r, ok := g.Modules[m.Name()]; ok {
				raw = r
			}
			if err := gm.InitGenesis(gctx, raw); err != nil {
				return nil, fmt.Errorf("app: genesis of module %s: %w", m.Name(), err)
			}
		}
	}
	pb, err := tx.Marshal(g.Params)
	if err != nil {
		return nil, err
	}
	kv.Set(keyParams, pb)
	putUint(kv, keyStateVersion, StateVersion)
	supply, err := a.bank.Supply(kv)
	if err != nil {
		return nil, err
	}
	a.params = g.Params
	a.blockTime = req.Time
	if g.State != nil {
		// The chain continues the exported one's heights: its first block
		// is initial_height (CometBFT's genesis document). The height
		// itself stays 0 until that block commits: queries read nothing yet.
		a.first = req.InitialHeight
	}
	a.genesis = kv
	a.checkMu.Lock()
	a.checkState = state.NewCache(kv)
	a.rc.rotate()
	a.checkMu.Unlock()
	a.log.Info("genesis", "chain_id", a.chainID, "accounts", len(g.Accounts), "supply", supply.Circulating.String())
	return &abci.ResponseInitChain{}, nil
}

func loadParams(r state.Reader) (Params, error) {
	var p Params
	b, err := r.Get(keyParams)
	if err != nil {
		return p, err
	}
	if b == nil {
		return p, errors.New("app: parameters missing from state")
	}
	if err := tx.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("app: parameters: %w", err)
	}
	return p, nil
}

// CheckTx implements abci.Application. It may run concurrently with
// FinalizeBlock (ConnSync client): it touches only checkState, the parked
// transactions and the signature cache.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	h := tx.Hash(req.Tx)
	t, err := a.decodeVerified(req.Tx, h)
	if err == nil {
		recheck := req.Type == abci.CheckTxType_Recheck
		var keys [][]byte
		if !recheck {
			// Outside the lock: concurrent CheckTx calls wait for each
			// other only for the checks themselves. (A recheck usually
			// keeps its verdict with the keys it recorded, so it derives
			// them only when it runs the checks.)
			keys = a.recordKeys(t)
		}
		a.checkMu.Lock()
		err = a.checkLocked(t, h, recheck, keys)
		a.checkMu.Unlock()
		if err == nil {
			a.verified.put(h, t)
		}
	}
	if err != nil {
		a.verified.remove(h)
		cs, code, log := errs.ABCI(err)
		return &abci.ResponseCheckTx{Code: code, Codespace: cs, Log: log}, nil
	}
	return &abci.ResponseCheckTx{Code: abci.CodeTypeOK}, nil
}

// parkedTx is a mempool transaction that a recheck found ahead of its
// sender's nonce: its predecessor may simply come later in the pass.
type parkedTx struct {
	tx   *tx.Tx
	hash [32]byte
}

// checkLocked runs t against the mempool's view and, when it passes, keeps
// its effects there. Called with checkMu held.
//
// After every block CometBFT rechecks the mempool's remaining transactions
// in list order, against a view reset to the committed state. That order is
// not always nonce order: the mempool inserts a transaction after releasing
// the lock under which CheckTx accepted it, so two of one sender's
// transactions admitted at nearly the same time (from two peers, or two
// API requests) can sit swapped. A recheck in that order would refuse the
// later nonce as a gap and CometBFT would drop a transaction that its
// sender was told is pending. So a recheck parks a transaction that is
// ahead of its sender's nonce instead of refusing it, and applies it once
// its predecessor has been applied; one that is still waiting at the next
// recheck pass (its predecessor is really gone) is refused then.
//
// A recheck first tries to keep the verdict without running the checks:
// when nothing the transaction's last check read has changed, it would
// pass again with the same writes (keepVerdict, recheck.go).
//
// keys are t's recordKeys when the caller derived them already, else nil.
func (a *App) checkLocked(t *tx.Tx, h [32]byte, recheck bool, keys [][]byte) error {
	if recheck {
		if a.keepVerdict(t, h) {
			a.rc.kept++
			a.unpark(t.Sender())
			return nil
		}
		a.rc.executed++
	}
	if err := a.runCheck(t, h, keys); err != nil {
		if recheck && errors.Is(err, tx.ErrNonceGap) && !a.parkedBefore[h] {
			sender := t.Sender()
			a.parked[sender] = append(a.parked[sender], parkedTx{t, h})
			return nil
		}
		return err
	}
	a.unpark(t.Sender())
	return nil
}

// unpark applies sender's parked transactions that now follow its nonce.
func (a *App) unpark(sender address.Address) {
	for len(a.parked[sender]) > 0 {
		next, err := getUint(a.checkState, keyNonce(sender))
		if err != nil {
			return
		}
		list := a.parked[sender]
		i := slices.IndexFunc(list, func(p parkedTx) bool { return p.tx.Nonce == next })
		if i < 0 {
			return
		}
		p := list[i]
		a.parked[sender] = slices.Delete(list, i, i+1)
		if len(a.parked[sender]) == 0 {
			delete(a.parked, sender)
		}
		if err := a.runCheck(p.tx, p.hash, nil); err != nil {
			// It stays in the mempool; the proposal leaves it out (its
			// nonce no longer follows) and the next recheck refuses it.
			a.parkedBefore[p.hash] = true
			return
		}
	}
}

// checkEnv is what CheckTx runs a transaction with: the parameters (they
// only change at genesis), and as the mempool's stand-in for the next
// block, the next height and the last block's time (the next block's is
// not known yet).
//
// It takes mu for reading, so a CheckTx waits while FinalizeBlock executes
// a block (FinalizeBlock holds mu throughout). That wait is kept on
// purpose: measured (docs/PERFORMANCE.md, 2026-11-30 morning), letting
// admissions run during FinalizeBlock (the environment copied at Commit
// instead) slowed the block's execution, so the work meter (work.go)
// capped proposals lower, the mempool grew past what blocks took, and
// every commit rechecked 2-4 times as many transactions under the
// mempool's lock; committed throughput fell. The wait is the mempool's
// backpressure.
func (a *App) checkEnv() (Params, execEnv) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.params, execEnv{height: a.nextHeight(), time: a.blockTime}
}

// nextHeight is the height of the next block.
func (a *App) nextHeight() int64 {
	if a.height == 0 && a.first > 0 {
		return a.first
	}
	return a.height + 1
}

// PreVerify decodes raw and checks its signature outside the mempool's
// serialised CheckTx path, so that many submitters verify in parallel; the
// CheckTx that follows finds the result. It returns the error CheckTx would
// return for a malformed or badly signed transaction.
func (a *App) PreVerify(raw []byte) error {
	h := tx.Hash(raw)
	if a.known(h) {
		return nil
	}
	t, err := tx.Decode(raw)
	if err == nil {
		err = t.VerifyWith(a.keys)
	}
	if err != nil {
		return err
	}
	a.preverified.put(h, t)
	return nil
}

// PreVerifyBatch is PreVerify for many transactions, their signatures
// checked as one batch (about half the CPU of checking each when they are
// valid). errs[i] is PreVerify's answer for raws[i].
func (a *App) PreVerifyBatch(raws [][]byte) []error {
	errs := make([]error, len(raws))
	var (
		txs    []*tx.Tx
		hashes [][32]byte
		pos    []int    // pos[k]: where txs[k] is in raws
		dups   [][2]int // a transaction twice in raws is checked once: {position, k}
	)
	first := map[[32]byte]int{}
	for i, raw := range raws {
		h := tx.Hash(raw)
		if a.known(h) {
			continue
		}
		if k, dup := first[h]; dup {
			dups = append(dups, [2]int{i, k})
			continue
		}
		t, err := tx.Decode(raw)
		if err != nil {
			errs[i] = err
			continue
		}
		first[h] = len(txs)
		pos = append(pos, i)
		txs, hashes = append(txs, t), append(hashes, h)
	}
	if len(txs) == 0 {
		return errs
	}
	verdicts := tx.VerifyAll(a.keys, txs)
	for k, err := range verdicts {
		if errs[pos[k]] = err; err == nil {
			a.preverified.put(hashes[k], txs[k])
		}
	}
	for _, d := range dups {
		errs[d[0]] = verdicts[d[1]]
	}
	return errs
}

// known reports whether h's signature has been checked already.
func (a *App) known(h [32]byte) bool {
	return a.verified.get(h) != nil || a.preverified.get(h) != nil
}

// decodeVerified returns the decoded transaction, verifying its signature
// unless this node already did (in PreVerify, or in an earlier CheckTx: a
// block's transactions are usually verified once, not twice).
func (a *App) decodeVerified(raw []byte, h [32]byte) (*tx.Tx, error) {
	if t := a.verified.get(h); t != nil {
		return t, nil
	}
	if t := a.preverified.take(h); t != nil {
		return t, nil
	}
	t, err := tx.Decode(raw)
	if err != nil {
		return nil, err
	}
	if err := t.VerifyWith(a.keys); err != nil {
		return nil, err
	}
	return t, nil
}

type execEnv struct {
	height   int64
	time     time.Time
	block    *blockExec // nil in CheckTx
	touched  *[]address.Address
	feesPaid *coin.Amount
	proposer address.Address // the block's proposer's reward account (zero in CheckTx)
}

// execTx runs the ante checks (chain id, nonce, fee) and the message in kv.
// The fee is charged and the nonce advanced only if the message succeeds:
// a failing transaction changes nothing but its index entry.
func (a *App) execTx(kv *state.Cache, t *tx.Tx, h [32]byte, p Params, env execEnv) (*module.Context, error) {
	if t.ChainID != a.chainID {
		return nil, fmt.Errorf("%w: transaction is for %q, this chain is %q", tx.ErrWrongChain, t.ChainID, a.chainID)
	}
	if t.Fee < p.MinFee {
		return nil, fmt.Errorf("%w: fee %s AITBC, minimum %s", tx.ErrFeeTooLow, t.Fee, p.MinFee)
	}
	sender := t.Sender()
	want, err := getUint(kv, keyNonce(sender))
	if err != nil {
		return nil, err
	}
	switch {
	case t.Nonce < want:
		return nil, fmt.Errorf("%w: nonce %d, account %s is at %d", tx.ErrBadNonce, t.Nonce, sender, want)
	case t.Nonce > want:
		return nil, fmt.Errorf("%w: nonce %d, account %s expects %d", tx.ErrNonceGap, t.Nonce, sender, want)
	}
	mod := a.handlers[moduleOf(t.Msg.Type)]
	if mod == nil {
		return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, t.Msg.Type)
	}
	ctx := &module.Context{KV: kv, Height: env.height, Time: env.time, ChainID: a.chainID, Signer: sender, SignerKey: t.PubKey, TxHash: h, Proposer: env.proposer}
	payer := sender
	if fp, ok := mod.(module.FeePayer); ok {
		p, ok, err := fp.PayFee(ctx, t.Msg, t.Fee)
		if err != nil {
			return nil, err
		}
		if ok {
			payer = p
		}
	}
	if err := a.bank.ChargeFee(kv, payer, t.Fee); err != nil {
		if errors.Is(err, bank.ErrInsufficientFunds) {
			return nil, fmt.Errorf("%w: %v", tx.ErrNoFunds, err)
		}
		return nil, err
	}
	putUint(kv, keyNonce(sender), want+1)
	if err := mod.Exec(ctx, t.Msg); err != nil {
		return nil, err
	}
	if env.feesPaid != nil {
		*env.feesPaid += t.Fee
	}
	return ctx, nil
}

func moduleOf(typ string) string {
	m, _, _ := strings.Cut(typ, "/")
	return m
}

// NonceOf returns the next nonce of addr as the mempool sees it (committed
// transactions plus those waiting in the mempool).
func (a *App) NonceOf(addr address.Address) (uint64, error) {
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	return getUint(a.checkState, keyNonce(addr))
}

// Committed runs fn with a consistent view of committed state: its
// height, block time and chain id, as module queries and invariants see it.
func (a *App) Committed(fn func(q module.Query) error) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return fn(a.queryLocked())
}

func (a *App) queryLocked() module.Query {
	return module.Query{State: a.store, Height: a.height, Time: a.blockTime, ChainID: a.chainID}
}

// Height returns the last committed height and app hash.
func (a *App) Height() (int64, []byte) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.height, append([]byte(nil), a.appHash...)
}

// IsPending reports whether the mempool holds the transaction (CheckTx
// accepted it and no block has included it yet).
func (a *App) IsPending(h [32]byte) bool { return a.verified.get(h) != nil }

// PendingTx returns the decoded transaction if the mempool holds it.
func (a *App) PendingTx(h [32]byte) *tx.Tx { return a.verified.get(h) }

func getUint(r state.Reader, key []byte) (uint64, error) {
	v, err := r.Get(key)
	if err != nil || len(v) == 0 {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("app: corrupt value under %q", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

func putUint(kv *state.Cache, key []byte, v uint64) {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	kv.Set(key, b)
}

func workers() int {
	n := runtime.GOMAXPROCS(0)
	if n < 1 {
		n = 1
	}
	return n
}
