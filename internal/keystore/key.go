package keystore

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Key is a decrypted wallet key. It signs but never hands out its private
// key, and formats (fmt, slog) as its name and address only. Wipe it when
// done; a wiped key refuses to sign.
type Key struct {
	info Info
	mu   sync.RWMutex
	priv ed25519.PrivateKey
}

// NewKey wraps a private key as a Key named name (for tests and tools that
// hold a key outside the store). The Key keeps its own copy.
func NewKey(name string, priv ed25519.PrivateKey) *Key {
	p := append(ed25519.PrivateKey(nil), priv...)
	return &Key{info: Info{Name: name, Address: address.FromPubKey(p.Public().(ed25519.PublicKey))}, priv: p}
}

// Name is the wallet's name.
func (k *Key) Name() string { return k.info.Name }

// Address is the wallet's address.
func (k *Key) Address() address.Address { return k.info.Address }

// Info is the wallet's public information.
func (k *Key) Info() Info { return k.info }

// PublicKey returns the ed25519 public key (nil once wiped).
func (k *Key) PublicKey() ed25519.PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.priv == nil {
		return nil
	}
	return append(ed25519.PublicKey(nil), k.priv.Public().(ed25519.PublicKey)...)
}

// Sign signs msg with ed25519. It panics on a wiped key (a use after Lock
// is a programming error the caller must prevent).
func (k *Key) Sign(msg []byte) []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.priv == nil {
		panic("keystore: Sign with a wiped key")
	}
	return ed25519.Sign(k.priv, msg)
}

// SignTx fills t's public key and signature. It returns an error on a
// wiped key.
func (k *Key) SignTx(t *tx.Tx) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.priv == nil {
		return fmt.Errorf("keystore: wallet %q: key wiped", k.info.Name)
	}
	t.Sign(k.priv)
	return nil
}

// Clone returns an independent copy of the key (wiping one leaves the
// other intact), or an error if k is already wiped. A holder of shared key
// signs with a clone, so that another goroutine wiping the shared key
// cannot pull it from under a signature in progress.
func (k *Key) Clone() (*Key, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.priv == nil {
		return nil, fmt.Errorf("keystore: wallet %q: key wiped", k.info.Name)
	}
	return &Key{info: k.info, priv: append(ed25519.PrivateKey(nil), k.priv...)}, nil
}

// Wiped reports whether Wipe was called.
func (k *Key) Wiped() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.priv == nil
}

// Wipe overwrites the private key with zeros and forgets it.
func (k *Key) Wipe() {
	k.mu.Lock()
	defer k.mu.Unlock()
	wipe(k.priv)
	k.priv = nil
}

// String formats the key without its secret.
func (k *Key) String() string { return fmt.Sprintf("keystore.Key{%s %s}", k.info.Name, k.info.Address) }

// GoString formats the key without its secret (for %#v).
func (k *Key) GoString() string { return k.String() }

// Format makes every fmt verb print String, so no verb can reach the key.
func (k *Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue makes slog print the name and address only.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("wallet", k.info.Name), slog.String("address", k.info.Address.String()))
}
