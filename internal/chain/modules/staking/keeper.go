// Package staking is the chain module of delegated stake: any holder
// stakes AITBC to an operator — a registered miner, or a validator (to
// itself) — and shares the stakers' part of every epoch's block rewards
// by bonded stake, after the operator's commission. Unstaking starts an
// unbonding period (unbonding_blocks) during which the stake earns nothing
// and can still be slashed; then it is paid back. Stake is frozen while
// its operator is in a dispute (Freeze/Unfreeze, for the dispute
// mechanism), and slashed on a validator's double signing (the
// application passes CometBFT's evidence) or by Slash. All of it sits in
// the module account "staking.bonded".
//
// Operators: a miner becomes one when first staked to; a validator when
// it first proposes a block (proof of authority: the set is fixed in
// genesis, and a proposer's reward account is what CometBFT names). The
// coordinator's scheduler reads each miner's bonded stake.
//
// Invariants: staking.bonded holds every delegation and every unbonding
// entry; each operator's bonded total is the sum of its delegations.
package staking

import (
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "staking"

// BondedAccount holds every delegation and unbonding entry.
const BondedAccount = "staking.bonded"

// Operator kinds.
const (
	KindMiner     uint8 = 1
	KindValidator uint8 = 2
)

// Params of the module.
type Params struct {
	MinStake             coin.Amount `json:"min_stake"`              // least amount of one stake message
	UnbondingBlocks      int64       `json:"unbonding_blocks"`       // blocks until unstaked AITBC is paid back
	DefaultCommissionBps uint64      `json:"default_commission_bps"` // an operator's commission until it sets one
	MaxCommissionBps     uint64      `json:"max_commission_bps"`
	DoubleSignSlashBps   uint64      `json:"double_sign_slash_bps"` // slashed from a validator's stake on duplicate-vote evidence
}

// DefaultParams: 1 AITBC minimum, 30 blocks of unbonding (a minute on
// the devnet), 10% commission by default and at most 50%, 5% slashed for
// double signing.
func DefaultParams() Params {
	return Params{MinStake: coin.Unit, UnbondingBlocks: 30, DefaultCommissionBps: 1000, MaxCommissionBps: 5000, DoubleSignSlashBps: 500}
}

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.UnbondingBlocks < 1 || p.MaxCommissionBps > 10_000 || p.DefaultCommissionBps > p.MaxCommissionBps || p.DoubleSignSlashBps > 10_000 {
		return fmt.Errorf("%w: %+v", ErrParams, p)
	}
	return nil
}

// Operator is what an address staked to is.
type Operator struct {
	_             struct{} `cbor:",toarray"`
	Kind          uint8
	Bonded        coin.Amount // sum of its delegations
	CommissionBps uint64      // in force
	// NextCommissionBps takes effect after the next epoch's payout (a
	// change is announced for a whole epoch before it applies).
	NextCommissionBps uint64
	NextSet           bool
	Disputes          uint32      // open disputes: while > 0 its stake is frozen
	Slashed           coin.Amount // ever slashed from its stakers
}

var (
	keyParams = []byte("staking/params")
	// OperatorPrefix + address: an Operator.
	OperatorPrefix = []byte("staking/o/")
	// DelegationPrefix + operator + delegator: the delegation's amount.
	DelegationPrefix = []byte("staking/d/")
	// byDelegator + delegator + operator: an index of a staker's delegations.
	byDelegator = []byte("staking/r/")
	// UnbondingPrefix + height + delegator + operator: an amount paid back at height.
	UnbondingPrefix = []byte("staking/u/")
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func keyOperator(a address.Address) []byte { return cat(OperatorPrefix, a[:]) }
func keyDelegation(op, d address.Address) []byte {
	return cat(DelegationPrefix, op[:], d[:])
}
func keyByDelegator(d, op address.Address) []byte { return cat(byDelegator, d[:], op[:]) }
func heightKey(h int64) []byte                    { return binary.BigEndian.AppendUint64(nil, uint64(h)) }
func keyUnbonding(h int64, d, op address.Address) []byte {
	return cat(UnbondingPrefix, heightKey(h), d[:], op[:])
}

// Bank is what the module needs of the bank.
type Bank interface {
	Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error
	Burn(kv *state.Cache, from address.Address, amount coin.Amount) error
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
}

// Miners is what the module needs of the miner registry.
type Miners interface {
	Get(r state.Reader, a address.Address) (*miners.Miner, error)
}

// Keeper implements the module.
type Keeper struct {
	bank   Bank
	miners Miners
	bonded address.Address
}

// NewKeeper returns the module over the bank and the miner registry.
func NewKeeper(b Bank, m Miners) *Keeper {
	return &Keeper{bank: b, miners: m, bonded: address.Module(BondedAccount)}
}

var (
	_ module.Module      = (*Keeper)(nil)
	_ module.Handler     = (*Keeper)(nil)
	_ module.EndBlocker  = (*Keeper)(nil)
	_ module.Genesis     = (*Keeper)(nil)
	_ module.Accounts    = (*Keeper)(nil)
	_ module.Querier     = (*Keeper)(nil)
	_ module.Invariants  = (*Keeper)(nil)
	_ module.Describer   = (*Keeper)(nil)
	_ module.Misbehavior = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Accounts implements module.Accounts.
func (*Keeper) Accounts() []string { return []string{BondedAccount} }

// Params reads the parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, DefaultParams())
}

// GetOperator returns the operator record of a, or nil.
func (*Keeper) GetOperator(r state.Reader, a address.Address) (*Operator, error) {
	b, err := r.Get(keyOperator(a))
	if err != nil || b == nil {
		return nil, err
	}
	var o Operator
	if err := tx.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("staking: corrupt operator %s: %w", a, err)
	}
	return &o, nil
}

func (*Keeper) putOperator(kv *state.Cache, a address.Address, o *Operator) error {
	b, err := tx.Marshal(o)
	if err != nil {
		return err
	}
	kv.Set(keyOperator(a), b)
	return nil
}

func getAmount(r state.Reader, key []byte) (coin.Amount, error) {
	v, err := r.Get(key)
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("staking: corrupt amount under %x", key)
	}
	return coin.Amount(binary.BigEndian.Uint64(v)), nil
}

func putAmount(kv *state.Cache, key []byte, a coin.Amount) {
	if a == 0 {
		kv.Delete(key)
		return
	}
	kv.Set(key, binary.BigEndian.AppendUint64(nil, uint64(a)))
}

// Delegation returns what delegator has staked to op.
func (*Keeper) Delegation(r state.Reader, op, delegator address.Address) (coin.Amount, error) {
	return getAmount(r, keyDelegation(op, delegator))
}

func (k *Keeper) setDelegation(kv *state.Cache, op, d address.Address, amt coin.Amount) {
	putAmount(kv, keyDelegation(op, d), amt)
	if amt == 0 {
		kv.Delete(keyByDelegator(d, op))
	} else {
		kv.Set(keyByDelegator(d, op), []byte{1})
	}
}

// active reports whether op may be staked to and earns rewards: an
// active registered miner, or a validator.
func (k *Keeper) active(r state.Reader, a address.Address, o *Operator) (bool, error) {
	if o != nil && o.Kind == KindValidator {
		return true, nil
	}
	m, err := k.miners.Get(r, a)
	if err != nil {
		return false, err
	}
	return m != nil && m.Status == miners.StatusActive, nil
}

// Bonded returns op's bonded stake (zero when it has none): the
// coordinator's scheduler counts it in a miner's score.
func (k *Keeper) Bonded(r state.Reader, op address.Address) (coin.Amount, error) {
	o, err := k.GetOperator(r, op)
	if err != nil || o == nil {
		return 0, err
	}
	return o.Bonded, nil
}

// Freeze records an open dispute against op: its stake can neither be
// added to nor withdrawn until Unfreeze (a dispute's outcome may slash
// it). For the dispute mechanism of the marketplace.
func (k *Keeper) Freeze(kv *state.Cache, op address.Address) error {
	o, err := k.GetOperator(kv, op)
	if err != nil {
		return err
	}
	if o == nil {
		o = &Operator{Kind: KindMiner}
		p, err := k.Params(kv)
		if err != nil {
			return err
		}
		o.CommissionBps = p.DefaultCommissionBps
	}
	o.Disputes++
	return k.putOperator(kv, op, o)
}

// Unfreeze closes one dispute against op.
func (k *Keeper) Unfreeze(kv *state.Cache, op address.Address) error {
	o, err := k.GetOperator(kv, op)
	if err != nil || o == nil || o.Disputes == 0 {
		return err
	}
	o.Disputes--
	return k.putOperator(kv, op, o)
}
