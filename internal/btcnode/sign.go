package btcnode

import (
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Input is an output being spent: where it is, what it holds, and the key
// of its P2WPKH script.
type Input struct {
	OutPoint wire.OutPoint
	Value    int64
	PkScript []byte
	Key      *btcec.PrivateKey
}

// ErrFunds is a transaction whose inputs do not cover its outputs and fee.
var ErrFunds = errors.New("inputs do not cover the outputs and fee")

// P2WPKH is the native segwit address (BIP 84, bech32) of a public key.
func P2WPKH(pub *btcec.PublicKey, params *chaincfg.Params) (*btcutil.AddressWitnessPubKeyHash, error) {
	return btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), params)
}

// BuildTx spends ins to outs, sending what is left after fee to change
// (no change output when nothing is left), and signs every input (P2WPKH,
// SIGHASH_ALL). Its txid is fixed once signed: the bridge stores it before
// broadcasting, so that broadcasting it again can never pay twice.
func BuildTx(ins []Input, outs []*wire.TxOut, change btcutil.Address, fee int64) (*wire.MsgTx, error) {
	var in, out int64
	t := wire.NewMsgTx(wire.TxVersion)
	prev := make(map[wire.OutPoint]*wire.TxOut, len(ins))
	for _, i := range ins {
		in += i.Value
		t.AddTxIn(wire.NewTxIn(&i.OutPoint, nil, nil))
		prev[i.OutPoint] = wire.NewTxOut(i.Value, i.PkScript)
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
		script, err := txscript.PayToAddrScript(change)
		if err != nil {
			return nil, err
		}
		t.AddTxOut(wire.NewTxOut(left, script))
	}
	hashes := txscript.NewTxSigHashes(t, txscript.NewMultiPrevOutFetcher(prev))
	for idx, i := range ins {
		w, err := txscript.WitnessSignature(t, hashes, idx, i.Value, i.PkScript, txscript.SigHashAll, i.Key, true)
		if err != nil {
			return nil, fmt.Errorf("sign input %d: %w", idx, err)
		}
		t.TxIn[idx].Witness = w
	}
	return t, nil
}

// Output is an output paying to addr.
func Output(addr btcutil.Address, value int64) (*wire.TxOut, error) {
	script, err := txscript.PayToAddrScript(addr)
	if err != nil {
		return nil, err
	}
	return wire.NewTxOut(value, script), nil
}
