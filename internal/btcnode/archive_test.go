package btcnode_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/btcnode"
)

// TestArchiveBringsARegtestChainBackAfterARestart: btcd wipes its regtest
// chain at every start; the archive, kept in step with the node through a
// payment and a reorganisation, gives the restarted node the same chain
// back (same tip, the payment where it was), and the chain goes on from
// there. A record cut short (a crash mid-write) is dropped at open.
func TestArchiveBringsARegtestChainBackAfterARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin, err := btcnode.Binary(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w, err := btcnode.NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	other, err := btcnode.NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	n, err := btcnode.Start(ctx, btcnode.Config{Binary: bin, Dir: dir, MiningAddr: w.Addr})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			n.Stop()
		}
	})
	w.Attach(n)
	other.Attach(n)
	if _, err := n.Mine(btcnode.SegwitHeight + 10); err != nil {
		t.Fatal(err)
	}
	ar, err := btcnode.OpenArchive(filepath.Join(dir, "blocks.archive"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ar.Sync(n.Client); err != nil {
		t.Fatal(err)
	}
	txid, err := w.Send(other.Addr, 50_000_000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Mine(1); err != nil {
		t.Fatal(err)
	}
	// A reorganisation: the last block replaced by two others.
	hs, err := n.Mine(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := ar.Sync(n.Client); err != nil {
		t.Fatal(err)
	}
	if err := n.Client.InvalidateBlock(hs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Mine(2); err != nil {
		t.Fatal(err)
	}
	if err := ar.Sync(n.Client); err != nil {
		t.Fatal(err)
	}
	tip, _, err := n.Client.GetBestBlock()
	if err != nil {
		t.Fatal(err)
	}
	height, _ := n.Height()
	if ar.Height() != height {
		t.Fatalf("archive at %d, node at %d", ar.Height(), height)
	}
	n.Stop()
	stopped = true

	// A crash mid-append leaves half a record: it is dropped.
	f, err := os.OpenFile(filepath.Join(dir, "blocks.archive"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte{200, 0, 0, 0, 1, 2, 3})
	f.Close()
	ar, err = btcnode.OpenArchive(filepath.Join(dir, "blocks.archive"))
	if err != nil || ar.Height() != height {
		t.Fatalf("reopened archive at %d, want %d (%v)", ar.Height(), height, err)
	}

	n2, err := btcnode.Start(ctx, btcnode.Config{Binary: bin, Dir: dir, MiningAddr: w.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n2.Stop)
	if h, _ := n2.Height(); h != 0 {
		t.Fatalf("btcd kept its regtest chain (height %d): the archive is no longer needed", h)
	}
	got, err := ar.Restore(n2.Client)
	if err != nil || int64(got) != height {
		t.Fatalf("restored %d blocks, want %d: %v", got, height, err)
	}
	tip2, _, err := n2.Client.GetBestBlock()
	if err != nil || !tip2.IsEqual(tip) {
		t.Fatalf("tip after restore %v, want %v (%v)", tip2, tip, err)
	}
	other.Attach(n2)
	if bal, err := other.Balance(); err != nil || bal != 50_000_000 {
		t.Fatalf("the payment before the restart: %d sat (%v)", bal, err)
	}
	if raw, err := n2.Client.GetRawTransactionVerbose(txid); err != nil || raw.Confirmations < 1 {
		t.Fatalf("payment %s after the restart: %+v %v", txid, raw, err)
	}
	// Restoring again submits nothing; the chain goes on.
	if got, err := ar.Restore(n2.Client); err != nil || got != 0 {
		t.Fatalf("second restore: %d %v", got, err)
	}
	if _, err := n2.Mine(1); err != nil {
		t.Fatal(err)
	}
	if err := ar.Sync(n2.Client); err != nil || ar.Height() != height+1 {
		t.Fatalf("archive after a new block: %d (%v)", ar.Height(), err)
	}
}
