package btcnode_test

import (
	"errors"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/wire"

	"github.com/aitbc/aitbc/internal/btcnode"
	"github.com/aitbc/aitbc/internal/btcnode/btcnodetest"
)

// TestTwoOfThreeCustodyOnRegtest: bitcoin paid to a 2-of-3 P2WSH of three
// operators' keys moves only with two of their signatures. The address is
// the same whatever order the keys are listed in; one share is refused by
// Finalize and, assembled by hand, by btcd itself; a share from a key
// outside the set, or over other bytes, is refused; shares of operators 1
// and 3 spend it, and the payment arrives.
func TestTwoOfThreeCustodyOnRegtest(t *testing.T) {
	n, w := btcnodetest.Start(t)
	var keys []*btcec.PrivateKey
	var pubs []*btcec.PublicKey
	for range 3 {
		k, err := btcec.NewPrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys, pubs = append(keys, k), append(pubs, k.PubKey())
	}
	ms, err := btcnode.NewMultisig(2, pubs, btcnode.Params())
	if err != nil {
		t.Fatal(err)
	}
	again, err := btcnode.NewMultisig(2, []*btcec.PublicKey{pubs[2], pubs[0], pubs[1]}, btcnode.Params())
	if err != nil || again.Addr.EncodeAddress() != ms.Addr.EncodeAddress() {
		t.Fatalf("the address depends on the keys' order: %s, %s (%v)", ms.Addr, again.Addr, err)
	}
	for _, bad := range []struct {
		m    int
		keys []*btcec.PublicKey
	}{{0, pubs}, {4, pubs}, {2, []*btcec.PublicKey{pubs[0], pubs[0], pubs[1]}}} {
		if _, err := btcnode.NewMultisig(bad.m, bad.keys, btcnode.Params()); !errors.Is(err, btcnode.ErrMultisigSet) {
			t.Fatalf("%d of %d keys: %v", bad.m, len(bad.keys), err)
		}
	}

	const amount = 100_000_000
	txid, err := w.Send(ms.Addr, amount, 1_000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Mine(1); err != nil {
		t.Fatal(err)
	}
	raw, err := n.Client.GetRawTransaction(txid)
	if err != nil {
		t.Fatal(err)
	}
	var in btcnode.MultisigInput
	for i, o := range raw.MsgTx().TxOut {
		if o.Value == amount {
			in = btcnode.MultisigInput{OutPoint: wire.OutPoint{Hash: *txid, Index: uint32(i)}, Value: amount}
		}
	}
	dest, err := btcnode.NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	dest.Attach(n)
	out, err := btcnode.Output(dest.Addr, 60_000_000)
	if err != nil {
		t.Fatal(err)
	}
	ins := []btcnode.MultisigInput{in}
	spend, err := ms.Spend(ins, []*wire.TxOut{out}, ms.Addr, 2_000)
	if err != nil {
		t.Fatal(err)
	}
	share := func(i int) [][]byte {
		t.Helper()
		s, err := ms.Sign(spend, ins, keys[i])
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1, s3 := share(0), share(2)

	// One share is not enough, here and on Bitcoin.
	if err := ms.Finalize(spend, ins, map[*btcec.PublicKey][][]byte{pubs[0]: s1}); !errors.Is(err, btcnode.ErrThreshold) {
		t.Fatalf("one share: %v", err)
	}
	lone := spend.Copy()
	lone.TxIn[0].Witness = wire.TxWitness{nil, s1[0], ms.Script}
	if _, err := n.Client.SendRawTransaction(lone, true); err == nil {
		t.Fatal("btcd took a 2-of-3 spend with one signature")
	}
	// A key outside the set, and a share over other bytes.
	outsider, _ := btcec.NewPrivateKey()
	if _, err := ms.Sign(spend, ins, outsider); !errors.Is(err, btcnode.ErrNotSigner) {
		t.Fatalf("an outsider signing: %v", err)
	}
	other, err := ms.Spend(ins, []*wire.TxOut{out}, ms.Addr, 3_000)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := ms.Sign(other, ins, keys[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.Finalize(spend, ins, map[*btcec.PublicKey][][]byte{pubs[0]: s1, pubs[1]: forged}); !errors.Is(err, btcnode.ErrBadShare) {
		t.Fatalf("a share over other bytes: %v", err)
	}
	if err := ms.Finalize(spend, ins, map[*btcec.PublicKey][][]byte{pubs[0]: s1, outsider.PubKey(): s3}); !errors.Is(err, btcnode.ErrNotSigner) {
		t.Fatalf("a share from an outsider: %v", err)
	}

	// Operators 1 and 3: spent.
	if err := ms.Finalize(spend, ins, map[*btcec.PublicKey][][]byte{pubs[0]: s1, pubs[2]: s3}); err != nil {
		t.Fatal(err)
	}
	paid, err := n.Client.SendRawTransaction(spend, true)
	if err != nil {
		t.Fatalf("btcd refused the 2-of-3 spend: %v", err)
	}
	if _, err := n.Mine(1); err != nil {
		t.Fatal(err)
	}
	if bal, err := dest.Balance(); err != nil || bal != 60_000_000 {
		t.Fatalf("the destination holds %d sat (%v)", bal, err)
	}
	if tx, err := n.Client.GetRawTransactionVerbose(paid); err != nil || tx.Confirmations < 1 {
		t.Fatalf("the spend %s: %+v %v", paid, tx, err)
	}
}
