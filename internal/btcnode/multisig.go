package btcnode

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Bitcoin-side custody by several operators: coins held by an m-of-n
// P2WSH script (OP_CHECKMULTISIG over the operators' keys) move only with
// the signatures of m of them. Each operator's bridge daemon holds one key
// share and signs a spend on its own (Sign); anyone holding m valid
// shares assembles the witness (Finalize), and Bitcoin itself refuses a
// spend with fewer. The keys are sorted as BIP 67 says, so every operator
// derives the same script and address from the same set, whatever order
// it was listed in.

// Multisig errors.
var (
	ErrMultisigSet = errors.New("btcnode: a multisig needs 1 <= m <= n <= 15 distinct compressed keys")
	ErrNotSigner   = errors.New("btcnode: the key is not one of the multisig's")
	ErrBadShare    = errors.New("btcnode: a signature share does not verify")
	ErrThreshold   = errors.New("btcnode: fewer valid signature shares than the multisig needs")
)

// Multisig is an m-of-n P2WSH script and its address.
type Multisig struct {
	M      int
	Keys   []*btcec.PublicKey // BIP 67 order
	Script []byte             // the witness script
	Addr   *btcutil.AddressWitnessScriptHash
}

// NewMultisig builds the m-of-n script of keys.
func NewMultisig(m int, keys []*btcec.PublicKey, params *chaincfg.Params) (*Multisig, error) {
	n := len(keys)
	if m < 1 || m > n || n > 15 {
		return nil, fmt.Errorf("%w: %d of %d", ErrMultisigSet, m, n)
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b *btcec.PublicKey) int {
		return bytes.Compare(a.SerializeCompressed(), b.SerializeCompressed())
	})
	for i := 1; i < n; i++ {
		if sorted[i].IsEqual(sorted[i-1]) {
			return nil, fmt.Errorf("%w: a key twice", ErrMultisigSet)
		}
	}
	b := txscript.NewScriptBuilder().AddInt64(int64(m))
	for _, k := range sorted {
		b.AddData(k.SerializeCompressed())
	}
	script, err := b.AddInt64(int64(n)).AddOp(txscript.OP_CHECKMULTISIG).Script()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(script)
	addr, err := btcutil.NewAddressWitnessScriptHash(h[:], params)
	if err != nil {
		return nil, err
	}
	return &Multisig{M: m, Keys: sorted, Script: script, Addr: addr}, nil
}

// MultisigInput is an output of the multisig being spent.
type MultisigInput struct {
	OutPoint wire.OutPoint
	Value    int64
}

// Spend builds the unsigned transaction spending ins to outs, what is left
// after fee to change (none when nothing is left). Every operator signs
// these same bytes.
func (ms *Multisig) Spend(ins []MultisigInput, outs []*wire.TxOut, change btcutil.Address, fee int64) (*wire.MsgTx, error) {
	t := wire.NewMsgTx(wire.TxVersion)
	var in, out int64
	for _, i := range ins {
		in += i.Value
		t.AddTxIn(wire.NewTxIn(&i.OutPoint, nil, nil))
	}
	for _, o := range outs {
		out += o.Value
		t.AddTxOut(o)
	}
	left := in - out - fee
	if left < 0 || fee < 0 {
		return nil, fmt.Errorf("%w: in %d, out %d, fee %d sat", ErrFunds, in, out, fee)
	}
	if left > 0 {
		o, err := Output(change, left)
		if err != nil {
			return nil, err
		}
		t.AddTxOut(o)
	}
	return t, nil
}

func (ms *Multisig) sigHashes(t *wire.MsgTx, ins []MultisigInput) (*txscript.TxSigHashes, error) {
	if len(ins) != len(t.TxIn) {
		return nil, fmt.Errorf("btcnode: %d inputs described, the transaction has %d", len(ins), len(t.TxIn))
	}
	pk, err := txscript.PayToAddrScript(ms.Addr)
	if err != nil {
		return nil, err
	}
	prev := make(map[wire.OutPoint]*wire.TxOut, len(ins))
	for _, i := range ins {
		prev[i.OutPoint] = wire.NewTxOut(i.Value, pk)
	}
	return txscript.NewTxSigHashes(t, txscript.NewMultiPrevOutFetcher(prev)), nil
}

func (ms *Multisig) index(k *btcec.PublicKey) int {
	return slices.IndexFunc(ms.Keys, func(x *btcec.PublicKey) bool { return x.IsEqual(k) })
}

// Sign is one operator's share: its signature (DER, SIGHASH_ALL) of every
// input of t, in input order.
func (ms *Multisig) Sign(t *wire.MsgTx, ins []MultisigInput, key *btcec.PrivateKey) ([][]byte, error) {
	if ms.index(key.PubKey()) < 0 {
		return nil, ErrNotSigner
	}
	hashes, err := ms.sigHashes(t, ins)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(ins))
	for idx, i := range ins {
		sig, err := txscript.RawTxInWitnessSignature(t, hashes, idx, i.Value, ms.Script, txscript.SigHashAll, key)
		if err != nil {
			return nil, fmt.Errorf("sign input %d: %w", idx, err)
		}
		out[idx] = sig
	}
	return out, nil
}

// Finalize checks the shares (signer's public key → its signatures, one
// per input) against t and, with at least M valid ones from distinct
// signers, writes every input's witness: the empty element
// OP_CHECKMULTISIG consumes, M signatures in key order, the script. A
// share from a key not in the set, or one that does not verify, is an
// error: a bridge must know which operator sent a bad one.
func (ms *Multisig) Finalize(t *wire.MsgTx, ins []MultisigInput, shares map[*btcec.PublicKey][][]byte) error {
	hashes, err := ms.sigHashes(t, ins)
	if err != nil {
		return err
	}
	byKey := make([][][]byte, len(ms.Keys))
	for k, sigs := range shares {
		i := ms.index(k)
		if i < 0 {
			return ErrNotSigner
		}
		if len(sigs) != len(ins) {
			return fmt.Errorf("%w: %d signatures for %d inputs", ErrBadShare, len(sigs), len(ins))
		}
		for idx, sig := range sigs {
			if len(sig) < 2 || sig[len(sig)-1] != byte(txscript.SigHashAll) {
				return fmt.Errorf("%w: input %d: not SIGHASH_ALL", ErrBadShare, idx)
			}
			parsed, err := ecdsa.ParseDERSignature(sig[:len(sig)-1])
			if err != nil {
				return fmt.Errorf("%w: input %d: %w", ErrBadShare, idx, err)
			}
			h, err := txscript.CalcWitnessSigHash(ms.Script, hashes, txscript.SigHashAll, t, idx, ins[idx].Value)
			if err != nil {
				return err
			}
			if !parsed.Verify(h, k) {
				return fmt.Errorf("%w: input %d, key %x", ErrBadShare, idx, k.SerializeCompressed())
			}
		}
		byKey[i] = sigs
	}
	var signers []int
	for i, s := range byKey {
		if s != nil && len(signers) < ms.M {
			signers = append(signers, i)
		}
	}
	if len(signers) < ms.M {
		return fmt.Errorf("%w: %d of %d", ErrThreshold, len(signers), ms.M)
	}
	for idx := range t.TxIn {
		w := wire.TxWitness{nil}
		for _, i := range signers {
			w = append(w, byKey[i][idx])
		}
		t.TxIn[idx].Witness = append(w, ms.Script)
	}
	return nil
}
