package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// ErrNoFaucet: the node was started without a faucet key, so it cannot
// submit drips for HTTP callers (501 faucet_not_configured).
var ErrNoFaucet = errors.New("this node has no faucet key and does not submit faucet drips (a devnet's node has one; use `aitbc faucet --address A` with any wallet)")

// faucetSigner signs drips with the node's faucet key. The key needs no
// balance (the faucet module pays a drip's fee); mu orders its nonces.
type faucetSigner struct {
	mu   sync.Mutex
	key  ed25519.PrivateKey
	addr address.Address
}

func newFaucetSigner(k ed25519.PrivateKey) *faucetSigner {
	if len(k) != ed25519.PrivateKeySize {
		return nil
	}
	return &faucetSigner{key: k, addr: address.FromPubKey(k.Public().(ed25519.PublicKey))}
}

// FaucetAddress is the address that signs the node's drips (zero without
// a faucet key).
func (n *Node) FaucetAddress() address.Address {
	if n.faucet == nil {
		return address.Address{}
	}
	return n.faucet.addr
}

// Drip signs a faucet/drip of amount (0: the whole allowance left) to to
// with the node's faucet key and submits it, exactly as `aitbc faucet`
// does with a wallet. It returns the transaction's hash once the mempool
// accepted it, or the chain's refusal (faucet_limit with the time left,
// faucet_disabled, invalid_faucet_amount, faucet_empty), or ErrNoFaucet.
func (n *Node) Drip(ctx context.Context, to address.Address, amount coin.Amount) (string, error) {
	f := n.faucet
	if f == nil {
		return "", ErrNoFaucet
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	nonce, err := n.app.NonceOf(f.addr)
	if err != nil {
		return "", err
	}
	msg := faucet.NewDripMsg(to, amount)
	for try := 0; ; try++ {
		t := &tx.Tx{ChainID: n.ChainID(), Nonce: nonce, Fee: n.app.Params().MinFee, Msg: msg}
		t.Sign(f.key)
		raw, err := t.Encode()
		if err != nil {
			return "", err
		}
		h, err := n.Submit(ctx, raw)
		if err == nil || try > 0 || !(errors.Is(err, tx.ErrBadNonce) || errors.Is(err, tx.ErrNonceGap)) {
			return h, err
		}
		// A drip of ours left the mempool between NonceOf and CheckTx
		// (a block, a recheck): read the nonce again, once.
		if nonce, err = n.app.NonceOf(f.addr); err != nil {
			return "", err
		}
	}
}

// FaucetKeyFile is where a node home keeps its faucet key.
func FaucetKeyFile(home string) string { return filepath.Join(home, "config", "faucet_key") }

// ReadFaucetKey reads a faucet key file (the hex of an ed25519 seed, as
// LoadOrGenFaucetKey writes one): what `aitbc node start --faucet-key`
// gives a node that is not a devnet's. A missing file is an error, not a
// new key: a node should not start a faucet on a path mistyped.
func ReadFaucetKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: faucet key: %w (make one with: openssl rand -hex 32 > %s; chmod 600 %s)", err, path, path)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("node: faucet key %s: not the hex of a %d-byte seed", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// LoadOrGenFaucetKey reads the faucet key of home (the hex of an ed25519
// seed), making one (mode 0600) when there is none. The key holds no
// money: it only signs drips, whose fee the faucet pays.
func LoadOrGenFaucetKey(home string) (ed25519.PrivateKey, error) {
	path := FaucetKeyFile(home)
	b, err := os.ReadFile(path)
	if err == nil {
		seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("node: faucet key %s: not the hex of a %d-byte seed", path, ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("node: faucet key: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("node: faucet key: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(seed)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("node: faucet key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
