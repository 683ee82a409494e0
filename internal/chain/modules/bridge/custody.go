package bridge

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/txscript"
)

// Custody on the Bitcoin side: every output the bridge holds is an m-of-n
// P2WSH (OP_CHECKMULTISIG) of the operators' keys, one key per operator
// derived from its account xpub at the output's path (/0/index for a
// deposit address, /1/0 for the change), sorted as BIP 67 says. The script
// is the same as btcnode.NewMultisig builds (a test holds them equal); it
// is built here too because the chain verifies each operator's signature
// share against it and must not import the Bitcoin node's package.

// Custody is the m-of-n script of one derivation path.
type Custody struct {
	// Keys are the operators' public keys at the path, Keys[i] that of
	// Operators[i].
	Keys   []*btcec.PublicKey
	Script []byte // the witness script: m <sorted keys> n OP_CHECKMULTISIG
	Addr   *btcutil.AddressWitnessScriptHash
}

// ChangeChain and DepositChain are the BIP 32 chains under each
// operator's account key.
const (
	DepositChain = 0
	ChangeChain  = 1
)

// signerXPubs returns each operator's xpub, in operator order.
func (p Params) signerXPubs() []string {
	if len(p.XPubs) > 0 {
		return p.XPubs
	}
	if p.XPub != "" {
		return []string{p.XPub}
	}
	return nil
}

// validateSigners checks the signer set: one public, distinct account key
// of the network per operator.
func (p Params) validateSigners() error {
	if p.XPub != "" && len(p.XPubs) > 0 {
		return errors.New("give xpubs (one per operator) or, with one operator, xpub: not both")
	}
	if p.XPub != "" && len(p.Operators) != 1 {
		return fmt.Errorf("xpub is the shorthand of a bridge with one operator; %d operators need xpubs, one each", len(p.Operators))
	}
	xs := p.signerXPubs()
	if len(xs) != len(p.Operators) {
		return fmt.Errorf("%d xpubs for %d operators: one each, in the same order", len(xs), len(p.Operators))
	}
	net, err := NetParams(p.Network)
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for i, x := range xs {
		k, err := hdkeychain.NewKeyFromString(x)
		if err != nil {
			return fmt.Errorf("xpub of operator %d: %v", i, err)
		}
		if k.IsPrivate() {
			// the chain is public: a private key in genesis would give
			// anyone that operator's share of the bridge's bitcoin
			return fmt.Errorf("xpub of operator %d is a private extended key; give the public one (Neuter)", i)
		}
		if !k.IsForNet(net) {
			return fmt.Errorf("xpub of operator %d is not a %s key", i, p.Network)
		}
		pub, err := k.ECPubKey()
		if err != nil {
			return fmt.Errorf("xpub of operator %d: %v", i, err)
		}
		id := string(pub.SerializeCompressed())
		if j, ok := seen[id]; ok {
			return fmt.Errorf("operators %d and %d have the same xpub", j, i)
		}
		seen[id] = i
	}
	return nil
}

// OperatorIndex returns the index in Operators of the operator whose
// account xpub is xpub, or -1.
func (p Params) OperatorIndex(xpub string) int { return slices.Index(p.signerXPubs(), xpub) }

// Custody derives the m-of-n script of chain/index.
func (p Params) Custody(chain, index uint32) (*Custody, error) {
	net, err := NetParams(p.Network)
	if err != nil {
		return nil, err
	}
	if index >= hdkeychain.HardenedKeyStart || chain >= hdkeychain.HardenedKeyStart {
		return nil, ErrAddressesFull
	}
	xs := p.signerXPubs()
	if len(xs) == 0 || p.Threshold < 1 || p.Threshold > len(xs) {
		return nil, ErrDisabled
	}
	c := &Custody{}
	for i, x := range xs {
		k, err := hdkeychain.NewKeyFromString(x)
		if err != nil {
			return nil, fmt.Errorf("xpub of operator %d: %w", i, err)
		}
		if k.IsPrivate() {
			return nil, fmt.Errorf("%w: xpub of operator %d is private", ErrParams, i)
		}
		if k, err = k.Derive(chain); err == nil {
			k, err = k.Derive(index)
		}
		if err != nil {
			// BIP 32: an index whose key is invalid (odds 1 in 2^127) is skipped
			return nil, fmt.Errorf("derive %d/%d of operator %d: %w", chain, index, i, err)
		}
		pub, err := k.ECPubKey()
		if err != nil {
			return nil, err
		}
		c.Keys = append(c.Keys, pub)
	}
	sorted := slices.Clone(c.Keys)
	slices.SortFunc(sorted, func(a, b *btcec.PublicKey) int {
		return bytes.Compare(a.SerializeCompressed(), b.SerializeCompressed())
	})
	b := txscript.NewScriptBuilder().AddInt64(int64(p.Threshold))
	for _, k := range sorted {
		b.AddData(k.SerializeCompressed())
	}
	if c.Script, err = b.AddInt64(int64(len(sorted))).AddOp(txscript.OP_CHECKMULTISIG).Script(); err != nil {
		return nil, err
	}
	h := sha256.Sum256(c.Script)
	if c.Addr, err = btcutil.NewAddressWitnessScriptHash(h[:], net); err != nil {
		return nil, err
	}
	return c, nil
}

// PkScript is the output script paying to the custody address.
func (c *Custody) PkScript() []byte {
	s, _ := txscript.PayToAddrScript(c.Addr) // a P2WSH address always has one
	return s
}

// DepositAddress derives the deposit address of index: the m-of-n P2WSH
// of the operators' keys at /0/index.
func (p Params) DepositAddress(index uint32) (btcutil.Address, error) {
	c, err := p.Custody(DepositChain, index)
	if err != nil {
		return nil, err
	}
	return c.Addr, nil
}

// ChangeAddress is where payouts send their change: the m-of-n P2WSH of
// the operators' keys at /1/0.
func (p Params) ChangeAddress() (btcutil.Address, error) {
	c, err := p.Custody(ChangeChain, 0)
	if err != nil {
		return nil, err
	}
	return c.Addr, nil
}
