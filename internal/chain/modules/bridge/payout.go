package bridge

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Payouts are coordinated through the chain, so that no side channel
// between the operators' daemons has to be trusted or kept alive:
//
//  1. the withdrawal's designated proposer (operator (id + round) mod n,
//     the round advancing every ProposeTimeout blocks after the
//     withdrawal, so another takes over from one that is down) posts the
//     unsigned transaction (bridge/propose_payout). The chain checks it
//     exactly against its own view of the bridge's outputs (UTXO records:
//     minted deposits and the change of recorded payouts) and locks the
//     inputs it spends;
//  2. every operator's daemon checks the proposal again, against Bitcoin
//     itself, and posts its signature share (bridge/sign_payout), which the
//     chain verifies against the operator's key and the input's sighash;
//  3. with Threshold shares on chain, any daemon assembles the witnesses,
//     broadcasts and records the payment (bridge/paid, which must name the
//     proposal's txid).
//
// A proposal is never replaced: its txid (a segwit txid does not cover
// the witnesses) is fixed at proposal, its inputs locked, and every
// daemon that assembles it assembles the same transaction, so a payout
// can be broadcast any number of times and pays once. Replacing a stuck
// one would need the fee raised beyond what the withdrawal burned; that
// is a decision for a parameter change, not for a daemon.

// MaxPayoutTx bounds a proposed payout's encoding, MaxPayoutInputs its
// inputs (each share verification derives every operator's key per input).
const (
	MaxPayoutTx     = 16 << 10
	MaxPayoutInputs = 50
	// MaxSigLen bounds one DER signature with its sighash byte.
	MaxSigLen = 73
)

// Message types of payouts.
const (
	TypeProposePayout = "bridge/propose_payout"
	TypeSignPayout    = "bridge/sign_payout"
)

// MsgProposePayout proposes the unsigned Bitcoin transaction that pays
// withdrawal ID.
type MsgProposePayout struct {
	_  struct{} `cbor:",toarray"`
	ID uint64
	Tx []byte // wire encoding, no witnesses
}

// MsgSignPayout is one operator's signature share of withdrawal ID's
// payout: one signature (DER + SIGHASH_ALL) per input, in input order.
type MsgSignPayout struct {
	_    struct{} `cbor:",toarray"`
	ID   uint64
	Txid []byte // the proposal's txid (32 bytes, internal byte order)
	Sigs [][]byte
}

// NewProposePayoutMsg proposes t as withdrawal id's payout.
func NewProposePayoutMsg(id uint64, t *wire.MsgTx) (tx.Msg, error) {
	var buf bytes.Buffer
	if err := t.SerializeNoWitness(&buf); err != nil {
		return tx.Msg{}, err
	}
	return newMsg(TypeProposePayout, MsgProposePayout{ID: id, Tx: buf.Bytes()}), nil
}

// NewSignPayoutMsg carries an operator's share of withdrawal id's payout txid.
func NewSignPayoutMsg(id uint64, txid [32]byte, sigs [][]byte) tx.Msg {
	return newMsg(TypeSignPayout, MsgSignPayout{ID: id, Txid: txid[:], Sigs: sigs})
}

// UTXO is an output the bridge holds on Bitcoin, as the chain knows it.
type UTXO struct {
	_      struct{} `cbor:",toarray"`
	Amount uint64   // satoshis
	Chain  uint32   // DepositChain or ChangeChain
	Index  uint32
	Lock   uint64 // id+1 of the withdrawal whose proposal spends it; 0: free
}

// PayoutInput is an input of a proposal: what it spends.
type PayoutInput struct {
	_      struct{} `cbor:",toarray"`
	Amount uint64
	Chain  uint32
	Index  uint32
}

// Share is one operator's signatures of a proposal.
type Share struct {
	_      struct{} `cbor:",toarray"`
	Signer []byte
	Sigs   [][]byte
}

// Proposal is a withdrawal's payout transaction and its shares.
type Proposal struct {
	_        struct{} `cbor:",toarray"`
	Tx       []byte   // unsigned, no witnesses
	Inputs   []PayoutInput
	Proposer []byte
	Height   int64
	Shares   []Share
}

const (
	pUTXO = "bridge/utxo/" // txid (32) + vout (4 BE) → UTXO
	pProp = "bridge/prop/" // withdrawal id (8 BE) → Proposal
)

func keyUTXO(txid []byte, vout uint32) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(pUTXO), txid...), vout)
}
func keyProp(id uint64) []byte { return binary.BigEndian.AppendUint64([]byte(pProp), id) }

// Proposer returns the operator who may propose the payout of a
// withdrawal made at AITBC height made, at height h.
func (p Params) Proposer(id uint64, made, h int64) string {
	n := uint64(len(p.Operators))
	if n == 0 {
		return ""
	}
	round := uint64(0)
	if h > made && p.ProposeTimeout > 0 {
		round = uint64((h - made) / p.ProposeTimeout)
	}
	return p.Operators[(id+round)%n]
}

// DecodePayoutTx decodes a proposal's transaction, refusing any encoding
// but the canonical one without witnesses.
func DecodePayoutTx(raw []byte) (*wire.MsgTx, error) {
	if len(raw) == 0 || len(raw) > MaxPayoutTx {
		return nil, fmt.Errorf("%w: %d bytes (1 to %d)", ErrPayoutTx, len(raw), MaxPayoutTx)
	}
	t := wire.NewMsgTx(wire.TxVersion)
	if err := t.DeserializeNoWitness(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPayoutTx, err)
	}
	var again bytes.Buffer
	if err := t.SerializeNoWitness(&again); err != nil || !bytes.Equal(again.Bytes(), raw) {
		return nil, fmt.Errorf("%w: not in canonical encoding", ErrPayoutTx)
	}
	return t, nil
}

// PayoutSequence is every payout input's sequence: final, no RBF (a
// proposal is never replaced).
const PayoutSequence = wire.MaxTxInSequenceNum

// proposePayout checks a payout proposal exactly and locks its inputs.
func (k *Keeper) proposePayout(ctx *module.Context, m MsgProposePayout) error {
	t, err := DecodePayoutTx(m.Tx)
	if err != nil {
		return err
	}
	p, err := k.operator(ctx)
	if err != nil {
		return err
	}
	w, ok, err := read[Withdrawal](ctx.KV, keyWD(m.ID))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoWithdrawal, m.ID)
	}
	if w.PaidTx != nil {
		return fmt.Errorf("%w: withdrawal %d", ErrPaid, m.ID)
	}
	if prev, err := ctx.KV.Get(keyProp(m.ID)); err != nil {
		return err
	} else if prev != nil {
		return fmt.Errorf("%w: withdrawal %d", ErrProposed, m.ID)
	}
	if want := p.Proposer(m.ID, w.Height, ctx.Height); want != ctx.Signer.String() {
		return fmt.Errorf("%w: withdrawal %d's proposer at height %d is %s", ErrNotProposer, m.ID, ctx.Height, want)
	}
	if t.Version != 2 || t.LockTime != 0 || len(t.TxIn) == 0 || len(t.TxIn) > MaxPayoutInputs || len(t.TxOut) == 0 || len(t.TxOut) > 2 {
		return fmt.Errorf("%w: version 2, lock time 0, 1 to %d inputs and 1 or 2 outputs", ErrPayoutTx, MaxPayoutInputs)
	}
	// the outputs: the withdrawal's payout first, then the change, if any
	to, err := p.CheckAddress(w.To)
	if err != nil {
		return err
	}
	toScript, err := txscript.PayToAddrScript(to)
	if err != nil {
		return err
	}
	payout := w.Amount - w.Fee
	if !bytes.Equal(t.TxOut[0].PkScript, toScript) || t.TxOut[0].Value < 0 || uint64(t.TxOut[0].Value) != payout {
		return fmt.Errorf("%w: output 0 must pay %d sat to %s", ErrPayoutMismatch, payout, w.To)
	}
	outSum := payout
	if len(t.TxOut) == 2 {
		chg, err := p.Custody(ChangeChain, 0)
		if err != nil {
			return err
		}
		o := t.TxOut[1]
		if !bytes.Equal(o.PkScript, chg.PkScript()) || o.Value < DustSat || o.Value > MaxSat {
			return fmt.Errorf("%w: output 1 must be change of at least %d sat to the bridge's change address %s", ErrPayoutMismatch, DustSat, chg.Addr)
		}
		outSum += uint64(o.Value)
	}
	// the inputs: outputs the bridge holds, free, each once
	ins := make([]PayoutInput, len(t.TxIn))
	keys := make([][]byte, len(t.TxIn))
	var inSum uint64
	seen := map[wire.OutPoint]bool{}
	for i, in := range t.TxIn {
		if len(in.SignatureScript) != 0 || len(in.Witness) != 0 || in.Sequence != PayoutSequence {
			return fmt.Errorf("%w: input %d: no scripts, sequence %#x", ErrPayoutTx, i, uint32(PayoutSequence))
		}
		if seen[in.PreviousOutPoint] {
			return fmt.Errorf("%w: input %d spends %s twice", ErrPayoutTx, i, in.PreviousOutPoint)
		}
		seen[in.PreviousOutPoint] = true
		keys[i] = keyUTXO(in.PreviousOutPoint.Hash[:], in.PreviousOutPoint.Index)
		u, ok, err := read[UTXO](ctx.KV, keys[i])
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: input %d, %s", ErrNotBridgeInput, i, in.PreviousOutPoint)
		}
		if u.Lock != 0 {
			return fmt.Errorf("%w: input %d, %s, by withdrawal %d's payout", ErrInputLocked, i, in.PreviousOutPoint, u.Lock-1)
		}
		ins[i] = PayoutInput{Amount: u.Amount, Chain: u.Chain, Index: u.Index}
		inSum += u.Amount
	}
	if inSum < outSum || inSum-outSum != w.Fee {
		return fmt.Errorf("%w: inputs %d sat, outputs %d sat: the fee must be the withdrawal's %d sat", ErrPayoutFee, inSum, outSum, w.Fee)
	}
	for i := range t.TxIn {
		u, _, err := read[UTXO](ctx.KV, keys[i])
		if err != nil {
			return err
		}
		u.Lock = m.ID + 1
		if err := write(ctx.KV, keys[i], u); err != nil {
			return err
		}
	}
	ctx.Note(fmt.Sprintf("payout %s proposed for withdrawal %d", t.TxHash(), m.ID))
	return write(ctx.KV, keyProp(m.ID), Proposal{Tx: m.Tx, Inputs: ins, Proposer: ctx.Signer[:], Height: ctx.Height})
}

// signPayout verifies and records one operator's share.
func (k *Keeper) signPayout(ctx *module.Context, m MsgSignPayout) error {
	if len(m.Txid) != 32 || len(m.Sigs) == 0 || len(m.Sigs) > MaxPayoutInputs {
		return fmt.Errorf("%w: txid is 32 bytes, 1 to %d signatures", ErrInvalid, MaxPayoutInputs)
	}
	for _, s := range m.Sigs {
		if len(s) < 9 || len(s) > MaxSigLen {
			return fmt.Errorf("%w: a signature of %d bytes", ErrBadShare, len(s))
		}
	}
	p, err := k.operator(ctx)
	if err != nil {
		return err
	}
	pr, ok, err := read[Proposal](ctx.KV, keyProp(m.ID))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: withdrawal %d", ErrNoProposal, m.ID)
	}
	t, err := DecodePayoutTx(pr.Tx)
	if err != nil {
		return err
	}
	txid := t.TxHash()
	if !bytes.Equal(m.Txid, txid[:]) {
		return fmt.Errorf("%w: withdrawal %d's payout is %s, the share signs %x", ErrPayoutMismatch, m.ID, txid, reverse(m.Txid))
	}
	for _, s := range pr.Shares {
		if bytes.Equal(s.Signer, ctx.Signer[:]) {
			return fmt.Errorf("%w: withdrawal %d", ErrShared, m.ID)
		}
	}
	if len(m.Sigs) != len(t.TxIn) {
		return fmt.Errorf("%w: %d signatures for %d inputs", ErrBadShare, len(m.Sigs), len(t.TxIn))
	}
	me := -1
	for i, o := range p.Operators {
		if a, err := address.Parse(o); err == nil && a == ctx.Signer {
			me = i
		}
	}
	if err := VerifyShare(p, t, pr.Inputs, me, m.Sigs); err != nil {
		return err
	}
	pr.Shares = append(pr.Shares, Share{Signer: ctx.Signer[:], Sigs: m.Sigs})
	if len(pr.Shares) == p.Threshold {
		ctx.Note(fmt.Sprintf("payout %s of withdrawal %d signed by %d operators", txid, m.ID, p.Threshold))
	}
	return write(ctx.KV, keyProp(m.ID), pr)
}

// SigHashes returns each input's witness script and the sighash an
// operator signs for it (SIGHASH_ALL, BIP 143).
func SigHashes(p Params, t *wire.MsgTx, ins []PayoutInput) ([]*Custody, [][]byte, error) {
	if len(ins) != len(t.TxIn) {
		return nil, nil, fmt.Errorf("%w: %d inputs described, the transaction has %d", ErrPayoutTx, len(ins), len(t.TxIn))
	}
	cs := make([]*Custody, len(ins))
	prev := make(map[wire.OutPoint]*wire.TxOut, len(ins))
	for i, in := range ins {
		c, err := p.Custody(in.Chain, in.Index)
		if err != nil {
			return nil, nil, err
		}
		cs[i] = c
		prev[t.TxIn[i].PreviousOutPoint] = wire.NewTxOut(int64(in.Amount), c.PkScript())
	}
	hashes := txscript.NewTxSigHashes(t, txscript.NewMultiPrevOutFetcher(prev))
	out := make([][]byte, len(ins))
	for i, in := range ins {
		h, err := txscript.CalcWitnessSigHash(cs[i].Script, hashes, txscript.SigHashAll, t, i, int64(in.Amount))
		if err != nil {
			return nil, nil, err
		}
		out[i] = h
	}
	return cs, out, nil
}

// VerifyShare checks operator op's signatures of every input of t:
// SIGHASH_ALL, strict DER, low S (Bitcoin's relay policy), verifying
// against the operator's key at the input's path.
func VerifyShare(p Params, t *wire.MsgTx, ins []PayoutInput, op int, sigs [][]byte) error {
	if op < 0 || op >= len(p.Operators) {
		return fmt.Errorf("%w: operator %d", ErrNotOperator, op)
	}
	if len(sigs) != len(t.TxIn) {
		return fmt.Errorf("%w: %d signatures for %d inputs", ErrBadShare, len(sigs), len(t.TxIn))
	}
	cs, hs, err := SigHashes(p, t, ins)
	if err != nil {
		return err
	}
	for i, s := range sigs {
		if len(s) < 9 || len(s) > MaxSigLen || s[len(s)-1] != byte(txscript.SigHashAll) {
			return fmt.Errorf("%w: input %d: not a SIGHASH_ALL signature", ErrBadShare, i)
		}
		sig, err := ecdsa.ParseDERSignature(s[:len(s)-1])
		if err != nil {
			return fmt.Errorf("%w: input %d: %v", ErrBadShare, i, err)
		}
		if sv := sig.S(); sv.IsOverHalfOrder() {
			return fmt.Errorf("%w: input %d: high S (not relayed by Bitcoin nodes)", ErrBadShare, i)
		}
		if !sig.Verify(hs[i], cs[i].Keys[op]) {
			return fmt.Errorf("%w: input %d does not verify against operator %s's key %x", ErrBadShare, i, p.Operators[op], cs[i].Keys[op].SerializeCompressed())
		}
	}
	return nil
}

// Witness assembles input i's witness from the shares of operators ops
// (indexes into Operators, at least Threshold of them, each with its
// verified signatures): the empty element OP_CHECKMULTISIG consumes,
// Threshold signatures in the script's key order, the script.
func Witness(c *Custody, threshold int, ops []int, sigs map[int][]byte) (wire.TxWitness, error) {
	type ks struct {
		key []byte
		sig []byte
	}
	var list []ks
	for _, o := range ops {
		list = append(list, ks{c.Keys[o].SerializeCompressed(), sigs[o]})
	}
	if len(list) < threshold {
		return nil, fmt.Errorf("%w: %d of %d", ErrUnsigned, len(list), threshold)
	}
	// BIP 67 order of keys is the order OP_CHECKMULTISIG wants signatures in
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && bytes.Compare(list[j-1].key, list[j].key) > 0; j-- {
			list[j-1], list[j] = list[j], list[j-1]
		}
	}
	w := wire.TxWitness{nil}
	for _, x := range list[:threshold] {
		w = append(w, x.sig)
	}
	return append(w, c.Script), nil
}

// Assemble writes every input's witness from the proposal's shares (the
// first Threshold signers in key order); the txid does not change.
func Assemble(p Params, pr Proposal) (*wire.MsgTx, error) {
	t, err := DecodePayoutTx(pr.Tx)
	if err != nil {
		return nil, err
	}
	if len(pr.Shares) < p.Threshold {
		return nil, fmt.Errorf("%w: %d of %d", ErrUnsigned, len(pr.Shares), p.Threshold)
	}
	cs, _, err := SigHashes(p, t, pr.Inputs)
	if err != nil {
		return nil, err
	}
	var ops []int
	for _, s := range pr.Shares {
		for i, o := range p.Operators {
			if a, err := address.Parse(o); err == nil && bytes.Equal(a[:], s.Signer) {
				ops = append(ops, i)
			}
		}
	}
	for i := range t.TxIn {
		sigs := map[int][]byte{}
		for j, s := range pr.Shares {
			if j < len(ops) && i < len(s.Sigs) {
				sigs[ops[j]] = s.Sigs[i]
			}
		}
		w, err := Witness(cs[i], p.Threshold, ops, sigs)
		if err != nil {
			return nil, err
		}
		t.TxIn[i].Witness = w
	}
	return t, nil
}
