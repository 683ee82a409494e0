package btcnode_test

import (
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"

	"github.com/aitbc/aitbc/internal/btcnode"
	"github.com/aitbc/aitbc/internal/btcnode/btcnodetest"
)

// TestRegtestNodeWalletAndReorg starts a real btcd in regtest, mines past
// segwit's activation, pays a second wallet from the first (a P2WPKH
// spend signed here, accepted by btcd and mined), and checks that btcd's
// invalidateblock undoes the payment's block and reconsiderblock restores
// it: the reorganisation the bridge's tests rely on.
func TestRegtestNodeWalletAndReorg(t *testing.T) {
	n, w := btcnodetest.Start(t)
	other, err := btcnode.NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	other.Attach(n)
	before, err := w.Balance()
	if err != nil || before <= 0 {
		t.Fatalf("miner's wallet balance %d: %v", before, err)
	}
	txid, err := w.Send(other.Addr, 123_456_789, 1000)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := n.Mine(1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := other.Balance()
	if err != nil || got != 123_456_789 {
		t.Fatalf("receiver holds %d sat, want 123456789 (%v)", got, err)
	}
	raw, err := n.Client.GetRawTransactionVerbose(txid)
	if err != nil || raw.BlockHash != hs[0].String() {
		t.Fatalf("payment %s in block %q, want %s (%v)", txid, raw.BlockHash, hs[0], err)
	}
	if err := n.Client.InvalidateBlock(hs[0]); err != nil {
		t.Fatalf("invalidateblock: %v", err)
	}
	best, _, err := n.Client.GetBestBlock()
	if err != nil || best.IsEqual(hs[0]) {
		t.Fatalf("best block after invalidateblock %v (%v)", best, err)
	}
	raw, err = n.Client.GetRawTransactionVerbose(txid)
	if err != nil || raw.Confirmations != 0 {
		t.Fatalf("payment after its block was invalidated: %+v %v", raw, err)
	}
	if err := n.Client.ReconsiderBlock(hs[0]); err != nil {
		t.Fatalf("reconsiderblock: %v", err)
	}
	best, _, err = n.Client.GetBestBlock()
	if err != nil || !best.IsEqual(hs[0]) {
		t.Fatalf("best block after reconsiderblock %v, want %s (%v)", best, hs[0], err)
	}
	addr, _ := btcutil.DecodeAddress(other.Addr.EncodeAddress(), btcnode.Params())
	if s, _ := txscript.PayToAddrScript(addr); len(s) != 22 {
		t.Fatalf("P2WPKH script of %d bytes", len(s))
	}
}

// TestWalletSendsTwiceBeforeAMinedBlock: sends made back to back, with
// nothing mined between them, never pick the same coin (btcd's gettxout
// still calls a coin unspent while a mempool transaction spends it), and
// all of them arrive once mined.
func TestWalletSendsTwiceBeforeAMinedBlock(t *testing.T) {
	n, w := btcnodetest.Start(t)
	other, err := btcnode.NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	other.Attach(n)
	before, err := w.Balance()
	if err != nil {
		t.Fatal(err)
	}
	const sends, amount = 8, 1_000_000
	for i := range sends {
		if _, err := w.Send(other.Addr, amount, 1000); err != nil {
			t.Fatalf("send %d of %d before a block: %v", i+1, sends, err)
		}
	}
	// the spent coins no longer count, their change is not mined yet
	if after, err := w.Balance(); err != nil || after >= before-sends*amount {
		t.Fatalf("balance %d after %d unmined sends from %d (%v)", after, sends, before, err)
	}
	if _, err := n.Mine(1); err != nil {
		t.Fatal(err)
	}
	if got, err := other.Balance(); err != nil || got != sends*amount {
		t.Fatalf("receiver holds %d sat, want %d (%v)", got, sends*amount, err)
	}
}
