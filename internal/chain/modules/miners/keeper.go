// Package miners is the chain module of compute providers: registration
// with a stake and capabilities (models served, GPU, price per 1,000
// output tokens), heartbeats, and deregistration with an unbonding delay
// after which the stake is returned. Stakes are held in the module account
// "miners.stake". The jobs module reads the registry to check assignments
// and receipts.
//
// Invariant: the stake account holds exactly the stakes of the registry's
// records (active and unbonding).
package miners

import (
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "miners"

// StakeAccount names the module account that holds every miner's stake.
const StakeAccount = "miners.stake"

// Status of a miner.
const (
	StatusActive    uint8 = 1
	StatusUnbonding uint8 = 2
)

// Params of the module.
type Params struct {
	MinStake        coin.Amount `json:"min_stake"`
	UnbondingBlocks int64       `json:"unbonding_blocks"`
}

// DefaultParams: 100 AITBC minimum stake, 30 blocks of unbonding.
func DefaultParams() Params { return Params{MinStake: 100 * coin.Unit, UnbondingBlocks: 30} }

// Miner is a registry entry.
type Miner struct {
	_             struct{} `cbor:",toarray"`
	Address       []byte
	PubKey        []byte // the key that signs receipts
	Caps          Capabilities
	Stake         coin.Amount
	Status        uint8
	Registered    int64 // height
	LastHeartbeat int64 // block time, unix seconds
	UnbondAt      int64 // height at which the stake returns
	JobsSettled   uint64
	TokensOut     uint64
}

// Addr returns the miner's address.
func (m *Miner) Addr() address.Address {
	a, _ := address.FromBytes(m.Address)
	return a
}

var keyParams = []byte("miners/params")

// KeyPrefix is where miner records live.
var KeyPrefix = []byte("miners/m/")

func keyMiner(a address.Address) []byte { return append([]byte("miners/m/"), a[:]...) }

// keyProvider holds the provider a miner works for (miners/set_provider):
// kept apart from the miner's record, whose encoding stays as it is.
func keyProvider(a address.Address) []byte { return append([]byte("miners/p/"), a[:]...) }

// Provider returns the marketplace provider miner a named with
// miners/set_provider, if any.
func (*Keeper) Provider(r state.Reader, a address.Address) (address.Address, bool, error) {
	b, err := r.Get(keyProvider(a))
	if err != nil || b == nil {
		return address.Address{}, false, err
	}
	p, err := address.FromBytes(b)
	if err != nil {
		return address.Address{}, false, fmt.Errorf("miners: corrupt provider of %s: %w", a, err)
	}
	return p, true, nil
}

func keyUnbond(h int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("miners/u/"), uint64(h))
}

// Bank is what the module needs of the bank.
type Bank interface {
	Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
}

// Keeper implements the module.
type Keeper struct {
	bank  Bank
	stake address.Address
}

// NewKeeper returns the module over bank.
func NewKeeper(bank Bank) *Keeper { return &Keeper{bank: bank, stake: address.Module(StakeAccount)} }

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.EndBlocker = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Accounts   = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Accounts implements module.Accounts.
func (*Keeper) Accounts() []string { return []string{StakeAccount} }

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.UnbondingBlocks < 1 {
		return fmt.Errorf("miners: unbonding_blocks must be at least 1")
	}
	return nil
}

// Params reads the module parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, DefaultParams())
}

// Get returns the miner at a, or nil.
func (*Keeper) Get(r state.Reader, a address.Address) (*Miner, error) {
	b, err := r.Get(keyMiner(a))
	if err != nil || b == nil {
		return nil, err
	}
	m, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("miners: corrupt record of %s: %w", a, err)
	}
	return m, nil
}

// Decode decodes a miner record.
func Decode(b []byte) (*Miner, error) {
	var m Miner
	if err := tx.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func (*Keeper) put(kv *state.Cache, m *Miner) error {
	b, err := tx.Marshal(m)
	if err != nil {
		return err
	}
	kv.Set(keyMiner(m.Addr()), b)
	return nil
}

// each calls fn for every registry entry, in address order.
func each(v state.View, fn func(m *Miner) error) error {
	var ferr error
	err := v.Iterate(KeyPrefix, false, func(_, b []byte) bool {
		m, err := Decode(b)
		if err != nil {
			ferr = fmt.Errorf("miners: corrupt record: %w", err)
			return false
		}
		ferr = fn(m)
		return ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}

// RecordSettlement counts a settled job for the miner (its track record).
func (k *Keeper) RecordSettlement(kv *state.Cache, a address.Address, tokensOut uint64) error {
	m, err := k.Get(kv, a)
	if err != nil || m == nil {
		return err
	}
	m.JobsSettled++
	m.TokensOut += tokensOut
	return k.put(kv, m)
}
