// Package multisig is the chain module of m-of-n accounts. A multisig
// account has a name, a threshold and its signers; its address is derived
// from its name (Address), and no key exists for it, so only the module
// moves its money: any signer proposes a message for the account to send
// (a transfer, a stake, any message of another module), the other signers
// sign it, and when the threshold is reached the message executes as if
// the account had signed it. A proposal expires after expiry_blocks; a
// signer cannot sign twice; a proposal executes once.
//
// The account is an ordinary balance (anyone can pay into it), not a
// module account, so the module holds no money of its own.
package multisig

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "multisig"

// MaxSigners bounds an account's signers.
const MaxSigners = 20

// Params of the module.
type Params struct {
	ExpiryBlocks int64 `json:"expiry_blocks"` // a proposal expires this many blocks after it is made
}

// DefaultParams: proposals expire after 3,600 blocks (two hours of 2 s blocks).
func DefaultParams() Params { return Params{ExpiryBlocks: 3600} }

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.ExpiryBlocks < 1 {
		return fmt.Errorf("%w: expiry_blocks must be at least 1", ErrParams)
	}
	return nil
}

// Account is a multisig account.
type Account struct {
	_         struct{} `cbor:",toarray"`
	Threshold uint32
	Signers   [][]byte
	Next      uint64 // the next proposal's number
}

// IsSigner reports whether a is one of the account's signers.
func (a *Account) IsSigner(x address.Address) bool {
	for _, s := range a.Signers {
		if string(s) == string(x[:]) {
			return true
		}
	}
	return false
}

// Proposal is a message proposed for a multisig account.
type Proposal struct {
	_         struct{} `cbor:",toarray"`
	Msg       tx.Msg
	Proposer  []byte
	Approvals [][]byte
	Expires   int64 // last height at which it can be signed
	Executed  int64 // height it executed at; 0: not yet
}

var (
	keyParams = []byte("multisig/params")
)

func keyAccount(name string) []byte { return []byte("multisig/a/" + name) }
func keyProposal(name string, id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("multisig/p/"+name+"/"), id)
}

// Address is the address of the multisig account name: the first 20
// bytes of SHA-256 of "aitbc/multisig/" + name. No key exists for it.
func Address(name string) address.Address {
	h := sha256.Sum256([]byte("aitbc/multisig/" + name))
	a, _ := address.FromBytes(h[:address.Len])
	return a
}

// CheckName checks an account name: 1 to 64 of a-z, 0-9, '-', '_', '.'.
func CheckName(name string) error {
	if len(name) < 1 || len(name) > 64 {
		return fmt.Errorf("%w: name must be 1 to 64 characters", ErrInvalid)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.", c)) {
			return fmt.Errorf("%w: name %q: only a-z, 0-9, '-', '_' and '.'", ErrInvalid, name)
		}
	}
	return nil
}

// Bank is what the module needs of the bank (for queries).
type Bank interface {
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
}

// Router finds the handler of another module's message type.
type Router func(typ string) module.Handler

// Keeper implements the module.
type Keeper struct {
	bank  Bank
	route Router
}

// NewKeeper returns the module over the bank.
func NewKeeper(b Bank) *Keeper { return &Keeper{bank: b} }

// SetRouter connects the other modules' handlers (modules.New does, once).
func (k *Keeper) SetRouter(r Router) { k.route = r }

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Params reads the parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, DefaultParams())
}

// InitGenesis implements module.Genesis: the parameters, and the
// accounts the genesis creates (genesisAccounts).
func (k *Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	if err := module.InitParams(ctx, raw, keyParams, DefaultParams(), Params.Validate); err != nil {
		return fmt.Errorf("multisig: %w", err)
	}
	return k.genesisAccounts(ctx, raw)
}

func get[T any](r state.Reader, key []byte) (*T, error) {
	b, err := r.Get(key)
	if err != nil || b == nil {
		return nil, err
	}
	var v T
	if err := tx.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("multisig: corrupt record %q: %w", key, err)
	}
	return &v, nil
}

func put(kv *state.Cache, key []byte, v any) error {
	b, err := tx.Marshal(v)
	if err != nil {
		return err
	}
	kv.Set(key, b)
	return nil
}

// GetAccount returns the account name, or nil.
func (*Keeper) GetAccount(r state.Reader, name string) (*Account, error) {
	return get[Account](r, keyAccount(name))
}

// GetProposal returns proposal id of account name, or nil.
func (*Keeper) GetProposal(r state.Reader, name string, id uint64) (*Proposal, error) {
	return get[Proposal](r, keyProposal(name, id))
}
