// Package bridge is one bridge operator's daemon: it watches a Bitcoin
// node (regtest on a devnet; testnet or mainnet by configuration), attests
// each deposit to a bridge address once it has N confirmations (the chain
// module mints when its operators' threshold agree), takes its part in
// paying each withdrawal burned on AITBC exactly once (the bitcoin is held
// by m-of-n P2WSH outputs of the operators' keys: it proposes payouts on
// its turn, checks and signs the others', assembles and broadcasts those m
// operators signed, all through the chain), and halts when a
// reorganisation deeper than N replaces blocks it has read. The CLI
// (aitbc exchange bridge-daemon) and the devnet start it.
//
// Exactly once, across restarts:
//   - a deposit is minted once by the chain (its outpoint is recorded; a
//     second attestation is refused), so re-attesting after a crash is
//     harmless;
//   - a withdrawal's payout is one proposal on chain, its txid fixed and
//     its inputs locked there; the assembled transaction is written to the
//     state file before it is broadcast, and after a crash it is
//     assembled or read again and broadcast again (same txid, same inputs:
//     it cannot pay twice), and its txid recorded on chain (bridge/paid),
//     which ends the withdrawal's pending state.
//
// The daemon reads only blocks with N confirmations, so reorganisations
// shallower than N never reach it; it remembers the hashes of the blocks
// it read, and a changed one means a deeper reorganisation: it halts
// (bridge/halt on chain, its status, the aitbc_bridge_halted metric, an
// error in the log).
package bridge

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/btcnode"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/rpc"
)

// BTC is what the daemon needs of a Bitcoin node's RPC (btcd's or Bitcoin
// Core's, through rpcclient).
type BTC interface {
	GetBlockCount() (int64, error)
	GetBlockHash(height int64) (*chainhash.Hash, error)
	GetBlock(hash *chainhash.Hash) (*wire.MsgBlock, error)
	GetTxOut(hash *chainhash.Hash, index uint32, mempool bool) (*btcjson.GetTxOutResult, error)
	SendRawTransaction(t *wire.MsgTx, allowHighFees bool) (*chainhash.Hash, error)
}

// Chain is what the daemon needs of an AITBC node.
type Chain interface {
	module.Getter
	WaitTx(ctx context.Context, hash string, every time.Duration) (rpc.Transaction, error)
}

// Sender signs a message with the operator's key and submits it.
type Sender interface {
	Send(ctx context.Context, msg tx.Msg) (string, error)
}

// Config of the daemon.
type Config struct {
	// XPrv is this operator's account-level extended private key (BIP 48,
	// m/48'/coin'/0'/2'): its public key must be one of the chain's
	// operators' xpubs, and the daemon acts as that operator.
	XPrv string
	// StateFile keeps the daemon's progress (see State).
	StateFile string
	// StartHeight is the Bitcoin height before the bridge's first possible
	// deposit: a fresh state reads from the block after it.
	StartHeight int64
	// Poll is how often the daemon looks at Bitcoin and the chain.
	Poll time.Duration
	// Keep is how many recent block hashes it remembers to detect deep
	// reorganisations (at least Confirmations; default 288, two days).
	Keep     int64
	BTC      BTC
	Chain    Chain
	Operator Sender
	Registry prometheus.Registerer
	Log      *slog.Logger
	// failpoint, in tests, stops a step at a named point as a crash would.
	failpoint func(point string) error
}

// Daemon is the bridge's daemon.
type Daemon struct {
	cfg    Config
	key    *hdkeychain.ExtendedKey
	params cb.Params
	me     int    // this operator's index in params.Operators
	meAddr string // and its AITBC address

	mu     sync.Mutex // guards st and status (the loop writes, Status reads)
	st     *State
	status Status

	scripts map[string]script // hex script → whose
	nextIdx uint32            // next deposit address index to fetch

	halted   prometheus.Gauge
	minted   prometheus.Counter
	paid     prometheus.Counter
	latency  prometheus.Histogram
	reserveG prometheus.Gauge
}

type script struct {
	chain, index uint32
	address      string
}

// Status is what the daemon reports (aitbc exchange reserves, /status).
type Status struct {
	Network        string    `json:"network"`
	Confirmations  int64     `json:"confirmations"`
	BitcoinHeight  int64     `json:"bitcoin_height"`
	Cursor         int64     `json:"cursor"`
	ReserveSat     int64     `json:"reserve_sat"` // confirmed outputs the bridge holds (N deep)
	Outputs        int       `json:"outputs"`
	PendingMints   int       `json:"pending_deposits"`
	Unbroadcast    int       `json:"signed_withdrawals"`
	Halted         bool      `json:"halted"`
	HaltReason     string    `json:"halt_reason,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	LastStep       time.Time `json:"last_step"`
	MintedDeposits int       `json:"minted_deposits"`
	PaidWithdraws  int       `json:"paid_withdrawals"`
	LastMintMS     int64     `json:"last_mint_latency_ms,omitempty"`
}

// ErrHalted is a daemon that has halted on a deep reorganisation.
var ErrHalted = errors.New("bridge halted")

// ErrKey is an XPrv that is not one of the chain's bridge operators' keys.
var ErrKey = errors.New("bridge key is not one of the chain's operators' xpubs")

// New checks the key against the chain's parameters and loads the state.
func New(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	v, err := cb.Query(ctx, cfg.Chain)
	if err != nil {
		return nil, fmt.Errorf("bridge parameters: %w", err)
	}
	if !v.Enabled {
		return nil, fmt.Errorf("%w: the chain has no bridge configured", cb.ErrDisabled)
	}
	if cfg.Keep < v.Params.Confirmations {
		cfg.Keep = max(288, v.Params.Confirmations)
	}
	key, err := hdkeychain.NewKeyFromString(cfg.XPrv)
	if err != nil || !key.IsPrivate() {
		return nil, fmt.Errorf("%w: not an extended private key (%v)", ErrKey, err)
	}
	pub, err := key.Neuter()
	if err != nil {
		return nil, err
	}
	me := v.Params.OperatorIndex(pub.String())
	if me < 0 {
		return nil, fmt.Errorf("%w: key's xpub %s", ErrKey, pub.String())
	}
	if _, err := cb.NetParams(v.Params.Network); err != nil {
		return nil, err
	}
	st, err := loadState(cfg.StateFile, cfg.StartHeight)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, key: key, params: v.Params, me: me, meAddr: v.Params.Operators[me], st: st, scripts: map[string]script{}}
	d.halted = prometheus.NewGauge(prometheus.GaugeOpts{Name: "aitbc_bridge_halted", Help: "1 when the Bitcoin bridge has halted on a reorganisation deeper than its confirmations"})
	d.minted = prometheus.NewCounter(prometheus.CounterOpts{Name: "aitbc_bridge_deposits_minted_total", Help: "deposits this daemon's attestation minted"})
	d.paid = prometheus.NewCounter(prometheus.CounterOpts{Name: "aitbc_bridge_withdrawals_paid_total", Help: "withdrawals this daemon paid on Bitcoin and recorded"})
	d.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "aitbc_bridge_mint_latency_seconds", Help: "from a deposit's Nth confirmation seen to its mint committed",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)})
	d.reserveG = prometheus.NewGauge(prometheus.GaugeOpts{Name: "aitbc_bridge_reserve_sat", Help: "satoshis the bridge holds in outputs N deep"})
	if cfg.Registry != nil {
		// Every series carries operator="N" (this key's place in the
		// chain's operators, 1-based, as the logs and docs number them):
		// several daemons can share one registry (a devnet runs them all
		// in one process), and an operator's dashboards and alerts read
		// the same series whether it scrapes one daemon or many.
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"operator": strconv.Itoa(me + 1)}, cfg.Registry)
		for _, c := range []prometheus.Collector{d.halted, d.minted, d.paid, d.latency, d.reserveG} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	if st.Halted != "" {
		d.halted.Set(1)
	}
	chg, err := v.Params.ChangeAddress()
	if err != nil {
		return nil, err
	}
	if err := d.addScript(chg, 1, 0); err != nil {
		return nil, err
	}
	d.status = Status{Network: v.Params.Network, Confirmations: v.Params.Confirmations, Cursor: st.Cursor, Halted: st.Halted != "", HaltReason: st.Halted}
	return d, nil
}

func (d *Daemon) addScript(a btcutil.Address, chain, index uint32) error {
	s, err := txscript.PayToAddrScript(a)
	if err != nil {
		return err
	}
	d.scripts[hex.EncodeToString(s)] = script{chain: chain, index: index, address: a.EncodeAddress()}
	return nil
}

// Status returns the daemon's last report.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Run steps every Poll until ctx ends. Errors are logged and retried; a
// halt stops the work but not the loop (the status keeps reporting it).
func (d *Daemon) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	said := false // a halt is logged once (halt logged it), not every poll
	for {
		if err := d.Step(ctx); err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrHalted) {
				if !said {
					d.cfg.Log.Error("bitcoin bridge halted: minting and withdrawals stopped", "reason", d.Status().HaltReason)
					said = true
				}
			} else {
				d.cfg.Log.Warn("bitcoin bridge step", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (d *Daemon) fail(point string) error {
	if d.cfg.failpoint != nil {
		return d.cfg.failpoint(point)
	}
	return nil
}

// Step does one round: new deposit addresses, new final blocks, deep
// reorganisation check, attestations, withdrawals.
func (d *Daemon) Step(ctx context.Context) (err error) {
	defer func() {
		d.mu.Lock()
		d.status.LastStep = time.Now()
		d.status.LastError = ""
		if err != nil {
			d.status.LastError = err.Error()
		}
		d.mu.Unlock()
	}()
	if d.st.Halted != "" {
		return fmt.Errorf("%w: %s", ErrHalted, d.st.Halted)
	}
	v, err := cb.Query(ctx, d.cfg.Chain)
	if err != nil {
		return err
	}
	if v.Halted != nil {
		return d.halt(ctx, "halted on chain: "+v.Halted.Reason, false)
	}
	// the tip before the addresses: a deposit in a block at or below it was
	// paid to an address the chain had given before that block was mined,
	// so the refresh below knows it
	tip, err := d.cfg.BTC.GetBlockCount()
	if err != nil {
		return fmt.Errorf("bitcoin: %w", err)
	}
	if err := d.refreshAddresses(ctx); err != nil {
		return err
	}
	if reason, err := d.checkReorg(); err != nil {
		return err
	} else if reason != "" {
		return d.halt(ctx, reason, true)
	}
	if err := d.readFinal(tip); err != nil {
		return err
	}
	if err := d.attestPending(ctx); err != nil {
		return err
	}
	if err := d.payWithdrawals(ctx); err != nil {
		return err
	}
	d.report(tip)
	return nil
}

func (d *Daemon) report(tip int64) {
	var sum int64
	for _, u := range d.st.UTXOs {
		sum += u.Value
	}
	d.reserveG.Set(float64(sum))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status.BitcoinHeight, d.status.Cursor, d.status.ReserveSat, d.status.Outputs = tip, d.st.Cursor, sum, len(d.st.UTXOs)
	d.status.PendingMints, d.status.Unbroadcast = len(d.st.Pending), len(d.st.Signed)
}

// refreshAddresses learns the deposit addresses given since last time.
func (d *Daemon) refreshAddresses(ctx context.Context) error {
	for {
		page, err := cb.QueryAddresses(ctx, d.cfg.Chain, d.nextIdx, cb.MaxPage)
		if err != nil {
			return err
		}
		for _, a := range page {
			// derive it ourselves: an address the chain names that our key
			// does not give would be money we cannot spend
			mine, err := d.params.DepositAddress(a.Index)
			if err != nil {
				return err
			}
			if mine.EncodeAddress() != a.Address {
				return fmt.Errorf("%w: chain's deposit address %d is %s, the key gives %s", ErrKey, a.Index, a.Address, mine.EncodeAddress())
			}
			if err := d.addScript(mine, 0, a.Index); err != nil {
				return err
			}
			d.nextIdx = a.Index + 1
		}
		if len(page) < cb.MaxPage {
			return nil
		}
	}
}

// checkReorg compares the hashes of the blocks read with Bitcoin's main
// chain now: a difference is a reorganisation at least N deep.
func (d *Daemon) checkReorg() (string, error) {
	hs := make([]int64, 0, len(d.st.Hashes))
	for h := range d.st.Hashes {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] > hs[j] })
	for _, h := range hs {
		got, err := d.cfg.BTC.GetBlockHash(h)
		if err != nil {
			// a chain now shorter than a height we read
			if strings.Contains(err.Error(), "out of range") {
				return fmt.Sprintf("Bitcoin block %d (%s), read with %d confirmations, is no longer on the main chain (the chain is shorter)", h, d.st.Hashes[h], d.params.Confirmations), nil
			}
			return "", fmt.Errorf("bitcoin: %w", err)
		}
		if got.String() != d.st.Hashes[h] {
			var affected []string
			for op, u := range d.st.UTXOs {
				if u.Height >= h {
					affected = append(affected, op)
				}
			}
			sort.Strings(affected)
			return fmt.Sprintf("reorganisation deeper than %d confirmations: Bitcoin block %d was %s, is now %s; outputs read from the replaced blocks: %s",
				d.params.Confirmations, h, d.st.Hashes[h], got, strings.Join(affected, ", ")), nil
		}
		if len(hs) > 0 && h < hs[0]-d.params.Confirmations-6 {
			// deeper blocks were checked on earlier rounds; a reorg reaching
			// them also replaced the shallower ones checked above
			break
		}
	}
	return "", nil
}

// halt stops the bridge: in the state file (so a restart stays halted),
// on chain (onChain: this daemon found it), in the status and metric.
func (d *Daemon) halt(ctx context.Context, reason string, onChain bool) error {
	d.cfg.Log.Error("bitcoin bridge halting", "reason", reason)
	d.st.Halted = reason
	if err := d.st.save(d.cfg.StateFile); err != nil {
		return err
	}
	d.halted.Set(1)
	d.mu.Lock()
	d.status.Halted, d.status.HaltReason = true, reason
	d.mu.Unlock()
	if onChain {
		msg := reason
		if len(msg) > cb.MaxReason {
			msg = msg[:cb.MaxReason]
		}
		if _, err := d.submit(ctx, cb.NewHaltMsg(msg), cb.ErrAlreadyHalted); err != nil {
			d.cfg.Log.Error("bridge halt on chain", "err", err)
		}
	}
	return fmt.Errorf("%w: %s", ErrHalted, reason)
}

// readFinal reads the blocks that now have N confirmations.
func (d *Daemon) readFinal(tip int64) error {
	final := tip - d.params.Confirmations + 1
	for h := d.st.Cursor + 1; h <= final; h++ {
		hash, err := d.cfg.BTC.GetBlockHash(h)
		if err != nil {
			return fmt.Errorf("bitcoin block %d: %w", h, err)
		}
		b, err := d.cfg.BTC.GetBlock(hash)
		if err != nil {
			return fmt.Errorf("bitcoin block %d: %w", h, err)
		}
		now := time.Now().UnixMilli()
		for _, t := range b.Transactions {
			for _, in := range t.TxIn {
				delete(d.st.UTXOs, in.PreviousOutPoint.String())
			}
			txid := t.TxHash()
			for vout, o := range t.TxOut {
				s, ok := d.scripts[hex.EncodeToString(o.PkScript)]
				if !ok {
					continue
				}
				op := wire.OutPoint{Hash: txid, Index: uint32(vout)}.String()
				d.st.UTXOs[op] = UTXO{Value: o.Value, Chain: s.chain, Index: s.index, Height: h, Script: hex.EncodeToString(o.PkScript)}
				if s.chain == 0 {
					d.st.Pending = append(d.st.Pending, PendingDeposit{Outpoint: op, Address: s.address, Amount: o.Value, BlockHash: hash.String(), BlockH: h, Final: now})
				}
			}
		}
		d.st.Hashes[h] = hash.String()
		delete(d.st.Hashes, h-d.cfg.Keep)
		d.st.Cursor = h
		// save per block on a long catch-up, so a crash does not lose it all
		if h%100 == 0 || h == final {
			if err := d.st.save(d.cfg.StateFile); err != nil {
				return err
			}
		}
	}
	return nil
}

// submit sends msg and waits for its block; a failure whose code is one
// of done counts as success (the work was already done).
func (d *Daemon) submit(ctx context.Context, msg tx.Msg, done ...*errs.Error) (rpc.Transaction, error) {
	hash, err := d.cfg.Operator.Send(ctx, msg)
	if err != nil {
		for _, e := range done {
			if isCode(err, e) {
				return rpc.Transaction{}, nil
			}
		}
		return rpc.Transaction{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t, err := d.cfg.Chain.WaitTx(wctx, hash, 100*time.Millisecond)
	if err != nil {
		return t, err
	}
	if t.Status != "committed" {
		for _, e := range done {
			if isCode(txError{t}, e) {
				return t, nil
			}
		}
		return t, fmt.Errorf("%s %s failed: %s (%s %d)", msg.Type, hash, t.Error, t.Codespace, t.Code)
	}
	return t, nil
}

type txError struct{ t rpc.Transaction }

func (e txError) Error() string { return e.t.Error }

// isCode reports whether err (a refusal at submission, or a failed
// transaction) carries the chain error target.
func isCode(err error, target *errs.Error) bool {
	var te txError
	if errors.As(err, &te) {
		return te.t.Codespace == target.Codespace && te.t.Code == target.Code
	}
	return errors.Is(err, target) || httpx.IsCode(err, target.Name)
}

// attestPending attests the queued deposits (the chain mints once the
// operators' threshold agree, and refuses a second mint).
func (d *Daemon) attestPending(ctx context.Context) error {
	for len(d.st.Pending) > 0 {
		p := d.st.Pending[0]
		if p.Amount < int64(d.params.MinDepositSat) {
			d.cfg.Log.Warn("bitcoin deposit below the bridge's minimum, not minted", "outpoint", p.Outpoint, "sat", p.Amount, "min", d.params.MinDepositSat)
			d.st.Skipped[p.Outpoint] = fmt.Sprintf("%d sat below the minimum %d", p.Amount, d.params.MinDepositSat)
		} else {
			txid, vout, err := cb.ParseOutpoint(p.Outpoint)
			if err != nil {
				return err
			}
			bh, err := chainhash.NewHashFromStr(p.BlockHash)
			if err != nil {
				return err
			}
			res, err := d.submit(ctx, cb.NewAttestMsg(txid, vout, p.Address, uint64(p.Amount), *bh, p.BlockH), cb.ErrAttested, cb.ErrMinted)
			if err != nil {
				return fmt.Errorf("attest %s: %w", p.Outpoint, err)
			}
			if err := d.fail("attested"); err != nil {
				return err
			}
			if res.Status == "committed" {
				dep, err := cb.QueryDeposit(ctx, d.cfg.Chain, p.Outpoint)
				if err == nil && dep.Minted != 0 {
					ms := time.Now().UnixMilli() - p.Final
					d.latency.Observe(float64(ms) / 1000)
					d.minted.Inc()
					d.mu.Lock()
					d.status.MintedDeposits++
					d.status.LastMintMS = ms
					d.mu.Unlock()
					d.cfg.Log.Info("bitcoin deposit minted", "outpoint", p.Outpoint, "sat", p.Amount, "account", dep.Account.String(), "latency_ms", ms)
				}
			}
		}
		d.st.Pending = d.st.Pending[1:]
		if err := d.st.save(d.cfg.StateFile); err != nil {
			return err
		}
	}
	return nil
}

// payWithdrawals pays each pending withdrawal once.
func (d *Daemon) payWithdrawals(ctx context.Context) error {
	var from uint64
	pending := map[uint64]bool{}
	for {
		page, err := cb.QueryPending(ctx, d.cfg.Chain, from, 100)
		if err != nil {
			return err
		}
		for _, w := range page {
			pending[w.ID] = true
			if err := d.pay(ctx, w); err != nil {
				return fmt.Errorf("withdrawal %d: %w", w.ID, err)
			}
			from = w.ID + 1
		}
		if len(page) < 100 {
			break
		}
	}
	// a payment recorded on chain by a step that crashed before it saved
	// the state leaves its signed transaction here: drop it once the chain
	// says paid
	for id := range d.st.Signed {
		if pending[id] {
			continue
		}
		w, err := cb.QueryWithdrawal(ctx, d.cfg.Chain, id)
		if err != nil {
			return err
		}
		if w.Status == "paid" {
			delete(d.st.Signed, id)
			if err := d.st.save(d.cfg.StateFile); err != nil {
				return err
			}
		}
	}
	return nil
}

// pay moves withdrawal w one step further along its payout: propose it
// (when this operator is the designated proposer), sign the proposal
// (once this daemon has checked it against Bitcoin itself), and once the
// threshold of shares is on chain, assemble, broadcast and record it.
func (d *Daemon) pay(ctx context.Context, w cb.WithdrawalView) error {
	if raw, ok := d.st.Signed[w.ID]; ok {
		t, err := decodeTx(raw)
		if err != nil {
			return err
		}
		return d.broadcast(ctx, w, t)
	}
	if w.PayoutTxid == "" {
		if w.Proposer != d.meAddr {
			return nil // another operator's turn; the chain passes it on after a timeout
		}
		t, err := d.build(ctx, w)
		if err != nil {
			return err
		}
		msg, err := cb.NewProposePayoutMsg(w.ID, t)
		if err != nil {
			return err
		}
		if _, err := d.submit(ctx, msg, cb.ErrProposed); err != nil {
			if isCode(err, cb.ErrNotProposer) {
				return nil // the round moved on while we built it
			}
			return fmt.Errorf("propose: %w", err)
		}
		d.cfg.Log.Info("bitcoin payout proposed", "id", w.ID, "txid", t.TxHash().String())
	}
	pv, err := cb.QueryPayout(ctx, d.cfg.Chain, w.ID)
	if err != nil {
		return err
	}
	pr, t, err := proposal(pv)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(pv.Signers, func(a address.Address) bool { return a.String() == d.meAddr }) && !pv.Complete {
		ok, err := d.check(w, pv, t)
		if err != nil || !ok {
			return err
		}
		sigs, err := d.sign(t, pr.Inputs)
		if err != nil {
			return err
		}
		if _, err := d.submit(ctx, cb.NewSignPayoutMsg(w.ID, t.TxHash(), sigs), cb.ErrShared); err != nil {
			return fmt.Errorf("sign payout %s: %w", t.TxHash(), err)
		}
		if pv, err = cb.QueryPayout(ctx, d.cfg.Chain, w.ID); err != nil {
			return err
		}
		if pr, _, err = proposal(pv); err != nil {
			return err
		}
	}
	if !pv.Complete {
		return nil // waiting for other operators' shares
	}
	signed, err := cb.Assemble(d.params, pr)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := signed.Serialize(&buf); err != nil {
		return err
	}
	// the signed transaction is on disk before this daemon broadcasts it;
	// its txid is the proposal's, fixed on chain, so whoever broadcasts
	// it, and however often, it pays once
	d.st.Signed[w.ID] = hex.EncodeToString(buf.Bytes())
	if err := d.st.save(d.cfg.StateFile); err != nil {
		return err
	}
	if err := d.fail("signed"); err != nil {
		return err
	}
	return d.broadcast(ctx, w, signed)
}

// broadcast sends the assembled payout and records it on chain.
func (d *Daemon) broadcast(ctx context.Context, w cb.WithdrawalView, t *wire.MsgTx) error {
	if _, err := d.cfg.BTC.SendRawTransaction(t, false); err != nil && !alreadyKnown(err) {
		return fmt.Errorf("broadcast %s: %w", t.TxHash(), err)
	}
	if err := d.fail("broadcast"); err != nil {
		return err
	}
	txid := t.TxHash()
	if _, err := d.submit(ctx, cb.NewPaidMsg(w.ID, txid), cb.ErrPaid); err != nil {
		return err
	}
	if err := d.fail("recorded"); err != nil {
		return err
	}
	delete(d.st.Signed, w.ID)
	if err := d.st.save(d.cfg.StateFile); err != nil {
		return err
	}
	d.paid.Inc()
	d.mu.Lock()
	d.status.PaidWithdraws++
	d.mu.Unlock()
	d.cfg.Log.Info("bitcoin withdrawal paid", "id", w.ID, "to", w.To, "sat", w.Payout, "txid", txid.String())
	return nil
}

// proposal turns the chain's view of a proposal back into its record.
func proposal(pv cb.PayoutView) (cb.Proposal, *wire.MsgTx, error) {
	raw, err := hex.DecodeString(pv.Tx)
	if err != nil {
		return cb.Proposal{}, nil, err
	}
	t, err := cb.DecodePayoutTx(raw)
	if err != nil {
		return cb.Proposal{}, nil, err
	}
	if len(pv.Inputs) != len(t.TxIn) || len(pv.Sigs) != len(pv.Signers) {
		return cb.Proposal{}, nil, fmt.Errorf("payout %s: the chain's view is inconsistent", pv.Txid)
	}
	pr := cb.Proposal{Tx: raw}
	for _, in := range pv.Inputs {
		pr.Inputs = append(pr.Inputs, cb.PayoutInput{Amount: in.Amount, Chain: in.Chain, Index: in.Index})
	}
	for i, a := range pv.Signers {
		sh := cb.Share{Signer: bytes.Clone(a[:])}
		for _, x := range pv.Sigs[i] {
			b, err := hex.DecodeString(x)
			if err != nil {
				return cb.Proposal{}, nil, err
			}
			sh.Sigs = append(sh.Sigs, b)
		}
		pr.Shares = append(pr.Shares, sh)
	}
	return pr, t, nil
}

// check re-derives a proposal on this daemon's own view of Bitcoin before
// it signs: the chain checked it against its records, this checks the
// records against Bitcoin. False (no error): not yet (an input this
// daemon has not seen N deep, e.g. a change output still confirming).
func (d *Daemon) check(w cb.WithdrawalView, pv cb.PayoutView, t *wire.MsgTx) (bool, error) {
	bad := func(format string, a ...any) (bool, error) {
		return false, fmt.Errorf("%w: payout %s of withdrawal %d: "+format, append([]any{ErrProposal, pv.Txid, w.ID}, a...)...)
	}
	if t.TxHash().String() != pv.Txid {
		return bad("txid %s", t.TxHash())
	}
	to, err := d.params.CheckAddress(w.To)
	if err != nil {
		return bad("%v", err)
	}
	toScript, err := txscript.PayToAddrScript(to)
	if err != nil {
		return false, err
	}
	chg, err := d.params.Custody(cb.ChangeChain, 0)
	if err != nil {
		return false, err
	}
	if len(t.TxOut) == 0 || len(t.TxOut) > 2 || !bytes.Equal(t.TxOut[0].PkScript, toScript) || t.TxOut[0].Value != int64(w.Payout) {
		return bad("does not pay %d sat to %s", w.Payout, w.To)
	}
	var out int64
	for i, o := range t.TxOut {
		if i == 1 && !bytes.Equal(o.PkScript, chg.PkScript()) {
			return bad("change not to the bridge's change address")
		}
		out += o.Value
	}
	var in int64
	for i, ti := range t.TxIn {
		op := ti.PreviousOutPoint.String()
		u, ok := d.st.UTXOs[op]
		if !ok {
			d.cfg.Log.Debug("payout input not seen N deep yet", "id", w.ID, "outpoint", op)
			return false, nil
		}
		pi := pv.Inputs[i]
		if u.Value != int64(pi.Amount) || u.Chain != pi.Chain || u.Index != pi.Index || pi.Outpoint != op {
			return bad("input %d %s: the chain says %d sat at %d/%d, Bitcoin %d sat at %d/%d", i, op, pi.Amount, pi.Chain, pi.Index, u.Value, u.Chain, u.Index)
		}
		in += u.Value
	}
	if in-out != int64(w.Fee) {
		return bad("fee %d sat, the withdrawal's is %d", in-out, w.Fee)
	}
	return true, nil
}

// sign is this operator's share: one signature per input, from its own key
// at the input's path.
func (d *Daemon) sign(t *wire.MsgTx, ins []cb.PayoutInput) ([][]byte, error) {
	cs, hs, err := cb.SigHashes(d.params, t, ins)
	if err != nil {
		return nil, err
	}
	sigs := make([][]byte, len(ins))
	for i, in := range ins {
		k, err := d.privKey(in.Chain, in.Index)
		if err != nil {
			return nil, err
		}
		if !k.PubKey().IsEqual(cs[i].Keys[d.me]) {
			return nil, fmt.Errorf("%w: key at %d/%d", ErrKey, in.Chain, in.Index)
		}
		sigs[i] = append(ecdsa.Sign(k, hs[i]).Serialize(), byte(txscript.SigHashAll))
	}
	return sigs, nil
}

// alreadyKnown is a broadcast of a transaction the node already has (in
// its mempool or a block): the payment stands, once.
func alreadyKnown(err error) bool {
	s := err.Error()
	return strings.Contains(s, "already have transaction") || strings.Contains(s, "already exists") ||
		strings.Contains(s, "txn-already-known") || strings.Contains(s, "txn-already-in-mempool") || strings.Contains(s, "already in block chain")
}

func decodeTx(raw string) (*wire.MsgTx, error) {
	b, err := hex.DecodeString(raw)
	if err != nil {
		return nil, err
	}
	t := wire.NewMsgTx(wire.TxVersion)
	return t, t.Deserialize(bytes.NewReader(b))
}

// ErrReserve is a withdrawal the bridge's confirmed outputs cannot pay now.
var ErrReserve = errors.New("the bridge's confirmed outputs do not cover the withdrawal")

// ErrProposal is a payout proposal this daemon refuses to sign.
var ErrProposal = errors.New("payout proposal refused")

// build selects the inputs of a payout (largest first among the outputs
// the chain records as the bridge's and free, that this daemon has seen N
// deep and Bitcoin still has unspent) and returns the unsigned payout:
// the withdrawal's payment, then the change (none when the inputs match
// exactly; never dust).
func (d *Daemon) build(ctx context.Context, w cb.WithdrawalView) (*wire.MsgTx, error) {
	to, err := d.params.CheckAddress(w.To)
	if err != nil {
		return nil, err
	}
	var cands []cb.UTXOView
	after := ""
	for {
		page, err := cb.QueryUTXOs(ctx, d.cfg.Chain, after, cb.MaxPage)
		if err != nil {
			return nil, err
		}
		for _, u := range page {
			after = u.Outpoint
			if mine, ok := d.st.UTXOs[u.Outpoint]; u.LockedBy == nil && ok && mine.Value == int64(u.Amount) {
				cands = append(cands, u)
			}
		}
		if len(page) < cb.MaxPage {
			break
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].Amount != cands[j].Amount {
			return cands[i].Amount > cands[j].Amount
		}
		return cands[i].Outpoint < cands[j].Outpoint
	})
	need := w.Payout + w.Fee
	t := wire.NewMsgTx(2)
	var sum uint64
	for _, c := range cands {
		if sum == need || sum >= need+cb.DustSat || len(t.TxIn) == cb.MaxPayoutInputs {
			break
		}
		op, err := parseOutPoint(c.Outpoint)
		if err != nil {
			return nil, err
		}
		res, err := d.cfg.BTC.GetTxOut(&op.Hash, op.Index, true)
		if err != nil {
			return nil, fmt.Errorf("bitcoin gettxout %s: %w", c.Outpoint, err)
		}
		if res == nil { // spent on Bitcoin: the chain's records and Bitcoin disagree
			d.cfg.Log.Warn("bridge output the chain records is spent on Bitcoin", "outpoint", c.Outpoint)
			continue
		}
		in := wire.NewTxIn(&op, nil, nil)
		in.Sequence = cb.PayoutSequence
		t.AddTxIn(in)
		sum += c.Amount
	}
	if sum != need && sum < need+cb.DustSat {
		return nil, fmt.Errorf("%w: %d sat needed (and no change below %d sat), %d sat held", ErrReserve, need, cb.DustSat, sum)
	}
	out, err := btcnode.Output(to, int64(w.Payout))
	if err != nil {
		return nil, err
	}
	t.AddTxOut(out)
	if sum > need {
		chg, err := d.params.Custody(cb.ChangeChain, 0)
		if err != nil {
			return nil, err
		}
		t.AddTxOut(wire.NewTxOut(int64(sum-need), chg.PkScript()))
	}
	return t, nil
}

func (d *Daemon) privKey(chain, index uint32) (*btcec.PrivateKey, error) {
	c, err := d.key.Derive(chain)
	if err != nil {
		return nil, err
	}
	c, err = c.Derive(index)
	if err != nil {
		return nil, err
	}
	return c.ECPrivKey()
}

func parseOutPoint(s string) (wire.OutPoint, error) {
	h, v, ok := strings.Cut(s, ":")
	hash, err := chainhash.NewHashFromStr(h)
	if !ok || err != nil {
		return wire.OutPoint{}, fmt.Errorf("outpoint %q", s)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return wire.OutPoint{}, fmt.Errorf("outpoint %q", s)
	}
	return wire.OutPoint{Hash: *hash, Index: uint32(n)}, nil
}
