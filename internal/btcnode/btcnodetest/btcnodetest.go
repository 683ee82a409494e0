// Package btcnodetest starts a real regtest Bitcoin node for a test.
package btcnodetest

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/btcnode"
)

// Start starts a regtest node for a test, mined past segwit's activation
// with its coinbase paid to the returned wallet (mature coins to spend),
// stopped when the test ends. btcd is built once from the tool dependency
// into the user's cache directory (btcnode.Binary).
func Start(t testing.TB) (*btcnode.Node, *btcnode.Wallet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin, err := btcnode.Binary(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	w, err := btcnode.NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	n, err := btcnode.Start(ctx, btcnode.Config{Binary: bin, Dir: t.TempDir(), MiningAddr: w.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	w.Attach(n)
	if _, err := n.Mine(btcnode.SegwitHeight + 10); err != nil {
		t.Fatal(err)
	}
	return n, w
}
