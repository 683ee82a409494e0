// Package pools is the chain module of mining pools: an operator
// registers a pool with a fee; registered miners join it (one pool at a
// time) and leave it. While a miner is in a pool, what it earns — its
// jobs' pay at settlement and its share of the block rewards — goes to
// the pool, held in the module account "pools.earnings", and the output
// tokens it settles are recorded for the pool. At the end of every reward
// epoch each pool's earnings are split: the fee to the operator, the rest
// between the members by their verified work (tokens) in the epoch
// (PoolSplit).
//
// Invariant: pools.earnings holds exactly what the pools accrued this
// epoch.
package pools

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
const Name = "pools"

// EarningsAccount holds what the pools earned in the current epoch.
const EarningsAccount = "pools.earnings"

// Pool is a pool's record.
type Pool struct {
	_        struct{} `cbor:",toarray"`
	Name     string
	Operator []byte
	FeeBps   uint64
	Members  uint32
	Accrued  coin.Amount // this epoch's earnings, held in pools.earnings
	Created  int64       // height
	Paid     coin.Amount // ever split between operator and members
}

// OperatorAddr is the pool's operator.
func (p *Pool) OperatorAddr() address.Address { a, _ := address.FromBytes(p.Operator); return a }

var (
	// PoolPrefix + name: a Pool.
	PoolPrefix   = []byte("pools/p/")
	memberPrefix = []byte("pools/m/")  // + miner: the pool's name
	rosterPrefix = []byte("pools/pm/") // + name + 0 + miner: membership, by pool
	workPrefix   = []byte("pools/w/")  // + name + 0 + miner: tokens settled for the pool this epoch
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func keyPool(name string) []byte                      { return cat(PoolPrefix, []byte(name)) }
func keyMember(m address.Address) []byte              { return cat(memberPrefix, m[:]) }
func rosterOf(name string) []byte                     { return cat(rosterPrefix, []byte(name), []byte{0}) }
func workOf(name string) []byte                       { return cat(workPrefix, []byte(name), []byte{0}) }
func keyRoster(name string, m address.Address) []byte { return cat(rosterOf(name), m[:]) }
func keyWork(name string, m address.Address) []byte   { return cat(workOf(name), m[:]) }

// Bank is what the module needs of the bank.
type Bank interface {
	Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
}

// Miners is what the module needs of the miner registry.
type Miners interface {
	Get(r state.Reader, a address.Address) (*miners.Miner, error)
}

// Epochs says when a reward epoch ends (the rewards module): pools split
// their earnings in the same block, after the epoch's rewards are paid.
type Epochs interface {
	EpochEnds(r state.Reader, height int64) (bool, error)
}

// Keeper implements the module.
type Keeper struct {
	bank     Bank
	miners   Miners
	epochs   Epochs
	earnings address.Address
}

// NewKeeper returns the module.
func NewKeeper(b Bank, m Miners) *Keeper {
	return &Keeper{bank: b, miners: m, earnings: address.Module(EarningsAccount)}
}

// SetEpochs connects the rewards module's epochs (modules.New does, once).
func (k *Keeper) SetEpochs(e Epochs) { k.epochs = e }

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.EndBlocker = (*Keeper)(nil)
	_ module.Accounts   = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Accounts implements module.Accounts.
func (*Keeper) Accounts() []string { return []string{EarningsAccount} }

// Get returns the pool called name, or nil.
func (*Keeper) Get(r state.Reader, name string) (*Pool, error) {
	b, err := r.Get(keyPool(name))
	if err != nil || b == nil {
		return nil, err
	}
	var p Pool
	if err := tx.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("pools: corrupt pool %q: %w", name, err)
	}
	return &p, nil
}

func (*Keeper) put(kv *state.Cache, p *Pool) error {
	b, err := tx.Marshal(p)
	if err != nil {
		return err
	}
	kv.Set(keyPool(p.Name), b)
	return nil
}

// PoolOf returns the name of miner's pool, or "".
func (*Keeper) PoolOf(r state.Reader, miner address.Address) (string, error) {
	b, err := r.Get(keyMember(miner))
	return string(b), err
}

func getUint(r state.Reader, key []byte) (uint64, error) {
	v, err := r.Get(key)
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("pools: corrupt value under %x", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

// Route implements the rewards module's Pools: a pool member's earnings
// go to the pools account, credited to its pool with the tokens as the
// member's work; anyone else's go to itself.
func (k *Keeper) Route(kv *state.Cache, miner address.Address, tokens uint64, amount coin.Amount) (address.Address, error) {
	name, err := k.PoolOf(kv, miner)
	if err != nil || name == "" {
		return miner, err
	}
	p, err := k.Get(kv, name)
	if err != nil {
		return address.Address{}, err
	}
	if p == nil {
		return miner, nil
	}
	if p.Accrued, err = p.Accrued.Add(amount); err != nil {
		return address.Address{}, err
	}
	if tokens > 0 {
		w, err := getUint(kv, keyWork(name, miner))
		if err != nil {
			return address.Address{}, err
		}
		kv.Set(keyWork(name, miner), binary.BigEndian.AppendUint64(nil, w+tokens))
	}
	return k.earnings, k.put(kv, p)
}
