// Package fakenode is an in-memory stand-in for an AITBC node, for tests of
// the wallet daemon and the CLI: a tiny ledger (balances, nonces, fees,
// bank transfers) behind the real node REST API (rpc.NewServer), so that
// clients talk the exact JSON contract of a node without CometBFT. Every
// accepted transaction is committed at once, in its own block.
//
// It checks what the chain checks before a transfer can change state:
// canonical decoding, signature, chain id, exact nonce, minimum fee and
// funds, answering with the chain's own coded errors. Other message types
// are accepted without effect beyond the fee and nonce.
//
// Test code only: imported by _test files.
package fakenode

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/rpc"
)

// ErrNotFound is answered for unknown transactions and blocks.
var ErrNotFound = errors.New("fakenode: not found")

// Node is the fake node. Its zero value is not usable; call New.
type Node struct {
	// The node API grows with the chain's modules; endpoints this fake does
	// not implement come from this nil interface and fail (the HTTP server
	// turns the panic into a dropped request) if a test calls them.
	rpc.Backend

	mu        sync.Mutex
	chainID   string
	minFee    coin.Amount
	balances  map[address.Address]coin.Amount
	nonces    map[address.Address]uint64
	txs       map[string]rpc.Transaction
	submitted [][]byte
	height    int64
	failNext  []error
}

// New returns a node of chain chainID with minimum fee minFee.
func New(chainID string, minFee coin.Amount) *Node {
	return &Node{
		chainID: chainID, minFee: minFee,
		balances: map[address.Address]coin.Amount{}, nonces: map[address.Address]uint64{},
		txs: map[string]rpc.Transaction{},
	}
}

// Start serves the node's REST API on a loopback httptest server. Close it
// when done.
func (n *Node) Start() *httptest.Server {
	api := rpc.NewServer(n, mapErr, prometheus.NewRegistry(), nil)
	return httptest.NewServer(api)
}

func mapErr(err error) (int, string, bool) {
	if errors.Is(err, ErrNotFound) {
		return http.StatusNotFound, "tx_not_found", true
	}
	return 0, "", false
}

// Fund sets the balance of addr.
func (n *Node) Fund(addr address.Address, amount coin.Amount) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.balances[addr] = amount
}

// SetNonce sets the next nonce of addr (to simulate transactions sent by
// someone else with the same key).
func (n *Node) SetNonce(addr address.Address, nonce uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nonces[addr] = nonce
}

// SetMinFee changes the minimum fee.
func (n *Node) SetMinFee(fee coin.Amount) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.minFee = fee
}

// FailNextSubmit makes the next submissions fail with errs, in order,
// before any check.
func (n *Node) FailNextSubmit(errs ...error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failNext = append(n.failNext, errs...)
}

// BalanceOf returns addr's balance.
func (n *Node) BalanceOf(addr address.Address) coin.Amount {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.balances[addr]
}

// Submitted returns the raw bytes of every accepted transaction, in order.
func (n *Node) Submitted() [][]byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([][]byte(nil), n.submitted...)
}

// Health implements rpc.Backend.
func (n *Node) Health() rpc.Health {
	n.mu.Lock()
	defer n.mu.Unlock()
	return rpc.Health{Status: "ok", ChainID: n.chainID, Height: n.height, NodeID: "fakenode"}
}

// ChainInfo implements rpc.Backend.
func (n *Node) ChainInfo() (rpc.ChainInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var supply coin.Amount
	for _, b := range n.balances {
		supply += b
	}
	return rpc.ChainInfo{ChainID: n.chainID, Height: n.height, MinFee: n.minFee, Supply: supply, Denom: coin.Denom}, nil
}

// Account implements rpc.Backend.
func (n *Node) Account(addr address.Address) (rpc.Account, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return rpc.Account{Address: addr, Balance: n.balances[addr], Nonce: n.nonces[addr], Height: n.height}, nil
}

// Submit implements rpc.Backend: it checks the transaction and commits it.
func (n *Node) Submit(_ context.Context, raw []byte) (string, error) {
	t, err := tx.Decode(raw)
	if err != nil {
		return "", err
	}
	if err := t.Verify(); err != nil {
		return "", err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.failNext) > 0 {
		err := n.failNext[0]
		n.failNext = n.failNext[1:]
		return "", err
	}
	from := t.Sender()
	switch want := n.nonces[from]; {
	case t.ChainID != n.chainID:
		return "", fmt.Errorf("%w: %q, this chain is %q", tx.ErrWrongChain, t.ChainID, n.chainID)
	case t.Nonce < want:
		return "", fmt.Errorf("%w: nonce %d, account %s is at %d", tx.ErrBadNonce, t.Nonce, from, want)
	case t.Nonce > want:
		return "", fmt.Errorf("%w: nonce %d, account %s expects %d", tx.ErrNonceGap, t.Nonce, from, want)
	case t.Fee < n.minFee:
		return "", fmt.Errorf("%w: %s < %s", tx.ErrFeeTooLow, t.Fee, n.minFee)
	}
	bal := n.balances[from]
	left, ok := bal.Sub(t.Fee)
	if !ok {
		return "", fmt.Errorf("%w: balance %s", tx.ErrNoFunds, bal)
	}
	var to address.Address
	var amount coin.Amount
	if t.Msg.Type == bank.TypeSend {
		if to, amount, err = bank.DecodeSend(t.Msg); err != nil {
			return "", err
		}
		if left, ok = left.Sub(amount); !ok {
			return "", fmt.Errorf("%w: %s has %s, needs %s + fee %s", bank.ErrInsufficientFunds, from, bal, amount, t.Fee)
		}
	}
	n.balances[from] = left
	if amount > 0 {
		n.balances[to] += amount
	}
	n.nonces[from] = t.Nonce + 1
	n.height++
	hash := tx.HashString(tx.Hash(raw))
	now := time.Now().UTC()
	n.txs[hash] = rpc.Transaction{Hash: hash, Status: "committed", Height: n.height, From: from, Nonce: t.Nonce, Fee: t.Fee, Type: t.Msg.Type, Time: &now}
	n.submitted = append(n.submitted, append([]byte(nil), raw...))
	return hash, nil
}

// Tx implements rpc.Backend.
func (n *Node) Tx(hash string) (rpc.Transaction, error) {
	h, err := tx.ParseHash(hash)
	if err != nil {
		return rpc.Transaction{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.txs[tx.HashString(h)]
	if !ok {
		return rpc.Transaction{}, fmt.Errorf("%w: %s", ErrNotFound, hash)
	}
	return v, nil
}

// Proof implements rpc.Backend (not supported).
func (n *Node) Proof(string) (rpc.TxProof, error) { return rpc.TxProof{}, ErrNotFound }

// Block implements rpc.Backend (not supported).
func (n *Node) Block(int64) (rpc.Block, error) { return rpc.Block{}, ErrNotFound }

// Head implements rpc.Backend.
func (n *Node) Head() (rpc.Head, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return rpc.Head{Height: n.height}, nil
}

// Sync implements rpc.Backend.
func (n *Node) Sync() rpc.SyncStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return rpc.SyncStatus{LatestBlockHeight: n.height, Validator: true}
}

// Transactions implements rpc.Backend.
func (n *Node) Transactions(addr address.Address, limit int) (rpc.TxList, error) {
	return rpc.TxList{Address: addr}, nil
}

// Routes implements rpc.Backend: the fake serves no module queries.
func (n *Node) Routes() []module.Route { return nil }

var _ rpc.Backend = (*Node)(nil)
