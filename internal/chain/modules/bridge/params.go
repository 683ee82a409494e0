package bridge

import (
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/aitbc/aitbc/internal/address"
)

// MaxOperators bounds the operator set: every operator is one of the
// Bitcoin multisig's keys, and the bridge's P2WSH scripts take at most 15
// (btcnode.NewMultisig's bound, within standard relay policy).
const MaxOperators = 15

// MaxBTCAddress bounds a Bitcoin address's length (bech32 addresses are at
// most 90 characters).
const MaxBTCAddress = 100

// Params of the module. A chain whose genesis gives no xpub has no bridge.
type Params struct {
	// Network is the Bitcoin network: mainnet, testnet (testnet3), signet
	// or regtest. Addresses are derived and checked for it.
	Network string `json:"network"`
	// XPubs are the operators' Bitcoin account-level extended public keys
	// (BIP 48 for P2WSH multisig, m/48'/coin'/0'/2'), XPubs[i] the key of
	// Operators[i]. Deposit addresses are the Threshold-of-n P2WSH of every
	// operator's key at /0/index (BIP 67 sorted), the bridge's change the
	// same at /1/0. Each operator's daemon holds its own private key only.
	XPubs []string `json:"xpubs,omitempty"`
	// XPub is the shorthand of a bridge with one operator: its xpub (the
	// bitcoin is held by a 1-of-1 P2WSH all the same). With more operators
	// it is refused: XPubs gives each operator's.
	XPub string `json:"xpub,omitempty"`
	// Operators are the AITBC addresses that attest deposits and sign
	// payouts; Threshold of them must agree before a deposit is minted,
	// and sign before a payout can be spent on Bitcoin.
	Operators []string `json:"operators"`
	Threshold int      `json:"threshold"`
	// ProposeTimeout is how many AITBC blocks the designated proposer of a
	// withdrawal's payout has before the next operator may propose it.
	ProposeTimeout int64 `json:"propose_timeout_blocks"`
	// Confirmations is N: a deposit is attested once its block is N deep
	// (1 on a devnet; 6 is Bitcoin's custom).
	Confirmations int64 `json:"confirmations"`
	// MinDepositSat is the smallest deposit minted (dust below it is
	// refused and stays with the bridge, unminted).
	MinDepositSat uint64 `json:"min_deposit_sat"`
	// MinWithdrawSat is the smallest withdrawal; WithdrawFeeSat of it pays
	// Bitcoin's fee, and the rest (at least the dust limit) the recipient.
	MinWithdrawSat uint64 `json:"min_withdraw_sat"`
	WithdrawFeeSat uint64 `json:"withdraw_fee_sat"`
}

// DustSat is the least an output may hold for Bitcoin nodes to relay it
// (546 sat, the limit of a legacy output; segwit outputs' is lower).
const DustSat = 546

// DefaultParams: no bridge (no xpub); once one is configured, 1-of-1,
// 6 confirmations, 546 sat minimum deposit, 10,000 sat minimum withdrawal
// of which 1,000 sat pay the Bitcoin fee.
func DefaultParams() Params {
	return Params{Network: "regtest", Threshold: 1, ProposeTimeout: 20, Confirmations: 6, MinDepositSat: DustSat, MinWithdrawSat: 10_000, WithdrawFeeSat: 1_000}
}

// Enabled reports whether the chain has a bridge.
func (p Params) Enabled() bool { return p.XPub != "" || len(p.XPubs) > 0 }

// NetParams returns the Bitcoin network parameters of a network's name.
func NetParams(name string) (*chaincfg.Params, error) {
	switch name {
	case "mainnet", "main", "bitcoin":
		return &chaincfg.MainNetParams, nil
	case "testnet", "testnet3", "test":
		return &chaincfg.TestNet3Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	}
	return nil, fmt.Errorf("unknown Bitcoin network %q (mainnet, testnet, signet, regtest)", name)
}

// Validate checks the parameters.
func (p Params) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrParams}, a...)...)
	}
	if _, err := NetParams(p.Network); err != nil {
		return bad("%v", err)
	}
	if !p.Enabled() {
		return nil
	}
	if len(p.Operators) == 0 || len(p.Operators) > MaxOperators {
		return bad("1 to %d operators, not %d", MaxOperators, len(p.Operators))
	}
	seen := map[address.Address]bool{}
	for _, o := range p.Operators {
		a, err := address.Parse(o)
		if err != nil {
			return bad("operator %q: %v", o, err)
		}
		if seen[a] {
			return bad("operator %s twice", o)
		}
		seen[a] = true
	}
	if p.Threshold < 1 || p.Threshold > len(p.Operators) {
		return bad("threshold %d of %d operators", p.Threshold, len(p.Operators))
	}
	if err := p.validateSigners(); err != nil {
		return bad("%v", err)
	}
	if p.ProposeTimeout < 1 || p.ProposeTimeout > 100_000 {
		return bad("propose_timeout_blocks %d (1 to 100000)", p.ProposeTimeout)
	}
	if p.Confirmations < 1 || p.Confirmations > 1000 {
		return bad("confirmations %d (1 to 1000)", p.Confirmations)
	}
	if p.MinDepositSat < DustSat {
		return bad("min_deposit_sat %d below the dust limit %d", p.MinDepositSat, DustSat)
	}
	if p.MinWithdrawSat < p.WithdrawFeeSat+DustSat {
		return bad("min_withdraw_sat %d must cover withdraw_fee_sat %d and the dust limit %d", p.MinWithdrawSat, p.WithdrawFeeSat, DustSat)
	}
	return nil
}

// IsOperator reports whether a is one of the operators.
func (p Params) IsOperator(a address.Address) bool {
	for _, o := range p.Operators {
		if x, err := address.Parse(o); err == nil && x == a {
			return true
		}
	}
	return false
}

// CheckAddress decodes a Bitcoin address of the network, refusing one of
// another network or of an unknown kind.
func (p Params) CheckAddress(s string) (btcutil.Address, error) {
	net, err := NetParams(p.Network)
	if err != nil {
		return nil, err
	}
	if len(s) == 0 || len(s) > MaxBTCAddress {
		return nil, fmt.Errorf("%w: %q", ErrBTCAddress, s)
	}
	a, err := btcutil.DecodeAddress(s, net)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBTCAddress, s, err)
	}
	if !a.IsForNet(net) {
		return nil, fmt.Errorf("%w: %q is not a %s address", ErrBTCAddress, s, p.Network)
	}
	switch a.(type) {
	case *btcutil.AddressPubKeyHash, *btcutil.AddressScriptHash, *btcutil.AddressWitnessPubKeyHash,
		*btcutil.AddressWitnessScriptHash, *btcutil.AddressTaproot:
	default:
		return nil, fmt.Errorf("%w: %q: not a payable address kind", ErrBTCAddress, s)
	}
	if a.EncodeAddress() != s {
		// one spelling per address, so that the record names it exactly
		return nil, fmt.Errorf("%w: %q is not in canonical form (%s)", ErrBTCAddress, s, a.EncodeAddress())
	}
	return a, nil
}

// AccountKey derives an operator's account-level key pair from a BIP 32
// seed: m/48'/coin'/0'/2' (BIP 48's path for P2WSH multisig; coin 0 on
// mainnet, 1 on test networks). The operator's daemon keeps xprv; the
// genesis carries xpub.
func AccountKey(seed []byte, network string) (xprv, xpub string, err error) {
	net, err := NetParams(network)
	if err != nil {
		return "", "", err
	}
	k, err := hdkeychain.NewMaster(seed, net)
	if err != nil {
		return "", "", err
	}
	coinType := uint32(1)
	if net.Net == chaincfg.MainNetParams.Net {
		coinType = 0
	}
	for _, i := range []uint32{48, coinType, 0, 2} {
		if k, err = k.Derive(hdkeychain.HardenedKeyStart + i); err != nil {
			return "", "", err
		}
	}
	pub, err := k.Neuter()
	if err != nil {
		return "", "", err
	}
	return k.String(), pub.String(), nil
}
