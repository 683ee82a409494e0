package bridge

import (
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/aitbc/aitbc/internal/address"
)

// MaxOperators bounds the operator set.
const MaxOperators = 20

// MaxBTCAddress bounds a Bitcoin address's length (bech32 addresses are at
// most 90 characters).
const MaxBTCAddress = 100

// Params of the module. A chain whose genesis gives no xpub has no bridge.
type Params struct {
	// Network is the Bitcoin network: mainnet, testnet (testnet3), signet
	// or regtest. Addresses are derived and checked for it.
	Network string `json:"network"`
	// XPub is the bridge's account-level extended public key (BIP 84,
	// m/84'/coin'/0'); deposit addresses are XPub/0/index, the bridge's
	// change XPub/1/0. The operators' daemon holds the private key.
	XPub string `json:"xpub"`
	// Operators are the AITBC addresses that attest deposits; Threshold of
	// them must agree before a deposit is minted.
	Operators []string `json:"operators"`
	Threshold int      `json:"threshold"`
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
	return Params{Network: "regtest", Threshold: 1, Confirmations: 6, MinDepositSat: DustSat, MinWithdrawSat: 10_000, WithdrawFeeSat: 1_000}
}

// Enabled reports whether the chain has a bridge.
func (p Params) Enabled() bool { return p.XPub != "" }

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
	if _, err := p.extKey(); err != nil {
		return bad("xpub: %v", err)
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

func (p Params) extKey() (*hdkeychain.ExtendedKey, error) {
	k, err := hdkeychain.NewKeyFromString(p.XPub)
	if err != nil {
		return nil, err
	}
	if k.IsPrivate() {
		// the chain is public: a private key in genesis would give anyone
		// the bridge's bitcoin
		return nil, errors.New("a private extended key; give the public one (Neuter)")
	}
	return k, nil
}

// DepositAddress derives the deposit address of index: XPub/0/index,
// P2WPKH (bech32, BIP 84).
func (p Params) DepositAddress(index uint32) (btcutil.Address, error) { return p.derive(0, index) }

// ChangeAddress is where the bridge's withdrawals send their change:
// XPub/1/0.
func (p Params) ChangeAddress() (btcutil.Address, error) { return p.derive(1, 0) }

func (p Params) derive(chain, index uint32) (btcutil.Address, error) {
	net, err := NetParams(p.Network)
	if err != nil {
		return nil, err
	}
	k, err := p.extKey()
	if err != nil {
		return nil, err
	}
	if index >= hdkeychain.HardenedKeyStart {
		return nil, ErrAddressesFull
	}
	c, err := k.Derive(chain)
	if err != nil {
		return nil, err
	}
	c, err = c.Derive(index)
	if err != nil {
		// BIP 32: an index whose key is invalid (odds 1 in 2^127) is skipped
		return nil, fmt.Errorf("derive %d/%d: %w", chain, index, err)
	}
	pub, err := c.ECPubKey()
	if err != nil {
		return nil, err
	}
	return btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), net)
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

// AccountKey derives the bridge's account-level key pair from a BIP 32
// seed: m/84'/coin'/0' (coin 0 on mainnet, 1 on test networks, BIP 44).
// The daemon keeps xprv; the genesis carries xpub.
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
	for _, i := range []uint32{84, coinType, 0} {
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
