package btcnode

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Wallet is a test Bitcoin wallet of one key: the node mines to it, and it
// pays anyone by building and signing its own transactions, finding its
// coins by reading the node's blocks (no wallet inside the node).
type Wallet struct {
	node   *Node
	key    *btcec.PrivateKey
	Addr   *btcutil.AddressWitnessPubKeyHash
	script []byte

	// mu is held across the node's RPCs on purpose: choosing coins and
	// broadcasting the transaction that spends them is one step, or two
	// sends could pick the same coin
	mu      sync.Mutex
	scanned int64 // height of the last block read
	coins   map[wire.OutPoint]coin
	// pending holds the coins this wallet's own unmined sends spend, with
	// the spending transaction: btcd's gettxout still reports a mined
	// output as unspent while a mempool transaction spends it, so the
	// wallet must remember what it spent itself
	pending map[wire.OutPoint]chainhash.Hash
}

type coin struct {
	value    int64
	height   int64
	coinbase bool
}

// NewWallet returns a wallet of a fresh key on the regtest network.
func NewWallet() (*Wallet, error) {
	k, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, err
	}
	return walletOf(k)
}

// LoadOrCreateWallet returns the wallet of the key in file path, creating
// the key when the file is absent (a devnet keeps its test wallet, and so
// the coins mined to it, across restarts).
func LoadOrCreateWallet(path string) (*Wallet, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := btcec.NewPrivateKey()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(k.Serialize())), 0o600); err != nil {
			return nil, err
		}
		return walletOf(k)
	}
	if err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("bitcoin wallet key %s: not 32 hex bytes", path)
	}
	k, _ := btcec.PrivKeyFromBytes(raw)
	return walletOf(k)
}

func walletOf(k *btcec.PrivateKey) (*Wallet, error) {
	a, err := P2WPKH(k.PubKey(), Params())
	if err != nil {
		return nil, err
	}
	s, err := txscript.PayToAddrScript(a)
	if err != nil {
		return nil, err
	}
	return &Wallet{key: k, Addr: a, script: s, coins: map[wire.OutPoint]coin{}, pending: map[wire.OutPoint]chainhash.Hash{}}, nil
}

// Attach lets the wallet read n's blocks.
func (w *Wallet) Attach(n *Node) { w.node = n }

// refresh reads the blocks it has not read yet: outputs to the wallet are
// coins, inputs spending them remove them. It does not follow
// reorganisations: a coin of a replaced block is skipped when spending
// (gettxout no longer finds it), and coins of replacing blocks at heights
// already read go unseen — enough for a test wallet.
func (w *Wallet) refresh() error {
	tip, err := w.node.Height()
	if err != nil {
		return err
	}
	for h := w.scanned + 1; h <= tip; h++ {
		hash, err := w.node.Client.GetBlockHash(h)
		if err != nil {
			return err
		}
		b, err := w.node.Client.GetBlock(hash)
		if err != nil {
			return err
		}
		for ti, t := range b.Transactions {
			for _, in := range t.TxIn {
				delete(w.coins, in.PreviousOutPoint)
				delete(w.pending, in.PreviousOutPoint)
			}
			txid := t.TxHash()
			for vi, o := range t.TxOut {
				if bytes.Equal(o.PkScript, w.script) {
					w.coins[wire.OutPoint{Hash: txid, Index: uint32(vi)}] = coin{value: o.Value, height: h, coinbase: ti == 0}
				}
			}
		}
		w.scanned = h
	}
	return nil
}

// Balance is what the wallet can spend now (mature, confirmed, not spent
// in the mempool).
func (w *Wallet) Balance() (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ins, err := w.spendable()
	if err != nil {
		return 0, err
	}
	var s int64
	for _, i := range ins {
		s += i.Value
	}
	return s, nil
}

func (w *Wallet) spendable() ([]Input, error) {
	if err := w.refresh(); err != nil {
		return nil, err
	}
	var out []Input
	for op, c := range w.coins {
		if c.coinbase && w.scanned-c.height+1 < CoinbaseMaturity+1 {
			continue
		}
		if tx, ok := w.pending[op]; ok {
			// spent by a send of ours not yet mined, unless the node
			// dropped that transaction (evicted, or the node restarted)
			if _, err := w.node.Client.GetRawTransaction(&tx); err == nil {
				continue
			}
			delete(w.pending, op)
		}
		res, err := w.node.Client.GetTxOut(&op.Hash, op.Index, true)
		if err != nil {
			return nil, err
		}
		if res == nil {
			continue
		}
		out = append(out, Input{OutPoint: op, Value: c.value, PkScript: w.script, Key: w.key})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value > out[j].Value })
	return out, nil
}

// Send pays amount satoshis to to with fee, broadcasts, and returns the
// transaction id.
func (w *Wallet) Send(to btcutil.Address, amount, fee int64) (*chainhash.Hash, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ins, err := w.spendable()
	if err != nil {
		return nil, err
	}
	var use []Input
	var sum int64
	for _, i := range ins {
		if sum >= amount+fee {
			break
		}
		use = append(use, i)
		sum += i.Value
	}
	out, err := Output(to, amount)
	if err != nil {
		return nil, err
	}
	t, err := BuildTx(use, []*wire.TxOut{out}, w.Addr, fee)
	if err != nil {
		return nil, err
	}
	h, err := w.node.Client.SendRawTransaction(t, true)
	if err != nil {
		return nil, fmt.Errorf("broadcast: %w", err)
	}
	for _, i := range use {
		w.pending[i.OutPoint] = *h
	}
	return h, nil
}
