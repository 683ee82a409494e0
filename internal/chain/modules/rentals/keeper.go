// Package rentals is the chain module of GPU rental by the hour: a
// customer leases a provider's gpu-rental (or gpu-compute) listing for a
// time at the listing's hourly price. Opening the lease moves its whole
// price into the module account "rentals.escrow"; at the end of every
// block the lease is charged for the time that passed (block time, to the
// millisecond) and the provider is paid that much, so a lease can never
// run overdrawn: what it may ever draw is what it locked. It closes itself
// in the first block at or after its paid-up end (the money has then run
// out), and the customer or the provider may end it earlier, when the
// unused part is refunded to the customer at once. A lease holds one place
// of the listing's capacity while it is active and frees it the moment it
// closes: the two problems Akash's users report most about leases (running
// overdrawn, capacity held after the money is gone) cannot happen.
//
// Off chain, the coordinator reads a lease to reserve the miner's slots for
// the renter and to give it a dedicated API key (docs/JOBS.md, "GPU rental
// by the hour").
//
// Invariants: rentals.escrow holds exactly the active leases' locked minus
// drawn; every lease's locked = drawn + refunded + remaining, its locked is
// the price of its paid-up time, and only active leases hold anything.
//
// Imported by internal/chain/modules (wiring), the CLI and the coordinator
// (message builders and typed queries).
package rentals

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "rentals"

// EscrowAccount holds the active leases' unspent money.
const EscrowAccount = "rentals.escrow"

// Lease status.
const (
	StatusActive  uint8 = 1
	StatusEnded   uint8 = 2 // ended early by the customer, the provider, or the listing's close
	StatusExpired uint8 = 3 // ran to its paid-up end: the money ran out
)

// StatusName is the status as queries show it.
func StatusName(s uint8) string {
	switch s {
	case StatusActive:
		return "active"
	case StatusEnded:
		return "ended"
	case StatusExpired:
		return "expired"
	}
	return "unknown"
}

// msPerHour is the divisor of the hourly price.
const msPerHour = 3_600_000

// Lease is a lease's record. Times are block times in unix milliseconds.
type Lease struct {
	_           struct{} `cbor:",toarray"`
	ID          string
	Service     string
	Customer    []byte
	Provider    []byte
	Price       coin.Amount // per hour, fixed at opening
	GPU         string      // the provider's miner's GPU at opening ("cpu" without one)
	GPUMemoryMB uint64
	StartMs     int64
	EndMs       int64       // paid-up end: the lease closes in the first block at or after it
	Locked      coin.Amount // ever moved into escrow: the price of EndMs - StartMs
	Drawn       coin.Amount // paid to the provider
	Refunded    coin.Amount // returned to the customer when it closed
	Status      uint8
	Opened      int64 // height
	Closed      int64 // height, 0 while active
	Reason      string
}

// CustomerAddr is the lease's customer.
func (l *Lease) CustomerAddr() address.Address { a, _ := address.FromBytes(l.Customer); return a }

// ProviderAddr is the lease's provider (the miner whose capacity it holds).
func (l *Lease) ProviderAddr() address.Address { a, _ := address.FromBytes(l.Provider); return a }

// Remaining is what the lease still holds in escrow.
func (l *Lease) Remaining() coin.Amount { return l.Locked - l.Drawn - l.Refunded }

// Cost is the price of ms milliseconds at price per hour, rounded down, or
// ok false when it does not fit an amount.
func Cost(price coin.Amount, ms int64) (coin.Amount, bool) {
	if ms <= 0 {
		return 0, true
	}
	hi, lo := bits.Mul64(uint64(price), uint64(ms))
	if hi >= msPerHour {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, msPerHour)
	return coin.Amount(q), true
}

// Due is what the lease owes its provider for the time up to nowMs,
// never more than it locked: charging again and again for the time since
// the start, not adding per-block amounts, means rounding never drifts.
func (l *Lease) Due(nowMs int64) coin.Amount {
	t := min(nowMs, l.EndMs)
	c, ok := Cost(l.Price, t-l.StartMs)
	if !ok || c > l.Locked {
		return l.Locked
	}
	return c
}

// Params are the module's parameters (GET /api/v1/rentals/params).
type Params struct {
	_            struct{} `cbor:",toarray"`
	MinDurationS uint64   `json:"min_duration_s"` // shortest lease (and extension)
	MaxDurationS uint64   `json:"max_duration_s"` // longest paid-up time of a lease
	MaxActive    uint64   `json:"max_active"`     // active leases on the chain at once: bounds each block's charging work
}

// DefaultParams: at least 10 s (five blocks at the default 2 s block
// time, so no lease is shorter than a block), at most 30 days, 10,000
// active leases.
func DefaultParams() Params {
	return Params{MinDurationS: 10, MaxDurationS: 30 * 24 * 3600, MaxActive: 10_000}
}

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.MinDurationS < 1 || p.MaxDurationS < p.MinDurationS || p.MaxDurationS > 10*365*24*3600 || p.MaxActive < 1 || p.MaxActive > 1_000_000 {
		return fmt.Errorf("%w: %+v", ErrParams, p)
	}
	return nil
}

var (
	keyParams     = []byte("rentals/params")
	keySeq        = []byte("rentals/seq")
	keyCount      = []byte("rentals/n") // active leases
	leasePrefix   = []byte("rentals/l/")
	activePrefix  = []byte("rentals/a/") // + id: active leases, charged every block
	livePrefix    = []byte("rentals/s/") // + service: active leases on it
	custPrefix    = []byte("rentals/c/") // + customer + id
	provPrefix    = []byte("rentals/p/") // + provider + id
	servicePrefix = []byte("rentals/v/") // + service + 0 + id
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func keyLease(id string) []byte                   { return cat(leasePrefix, []byte(id)) }
func keyActive(id string) []byte                  { return cat(activePrefix, []byte(id)) }
func keyLive(service string) []byte               { return cat(livePrefix, []byte(service)) }
func keyCust(a address.Address, id string) []byte { return cat(custPrefix, a[:], []byte(id)) }
func keyProv(a address.Address, id string) []byte { return cat(provPrefix, a[:], []byte(id)) }
func serviceOf(service string) []byte             { return cat(servicePrefix, []byte(service), []byte{0}) }

func getUint(r state.Reader, key []byte) (uint64, error) {
	v, err := r.Get(key)
	if err != nil || v == nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("rentals: corrupt value under %q", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

func putUint(kv *state.Cache, key []byte, n uint64) {
	if n == 0 {
		kv.Delete(key)
		return
	}
	kv.Set(key, binary.BigEndian.AppendUint64(nil, n))
}

// Bank is what the module needs of the bank.
type Bank interface {
	Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
}

// Listings is what the module needs of the market: the listing a lease
// rents.
type Listings interface {
	Listing(r state.Reader, id string) (*market.Listing, error)
}

// Miners is what the module needs of the miner registry: the provider must
// run an active miner, whose capacity the lease holds.
type Miners interface {
	Get(r state.Reader, a address.Address) (*miners.Miner, error)
}

// Keeper implements the module.
type Keeper struct {
	bank     Bank
	listings Listings
	miners   Miners
	escrow   address.Address
}

// NewKeeper returns the module.
func NewKeeper(b Bank, l Listings, m Miners) *Keeper {
	return &Keeper{bank: b, listings: l, miners: m, escrow: address.Module(EscrowAccount)}
}

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.EndBlocker = (*Keeper)(nil)
	_ module.Accounts   = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Exporter   = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Accounts implements module.Accounts.
func (*Keeper) Accounts() []string { return []string{EscrowAccount} }

// Params returns the module's parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, DefaultParams())
}

// Get returns lease id, or nil.
func (*Keeper) Get(r state.Reader, id string) (*Lease, error) {
	b, err := r.Get(keyLease(id))
	if err != nil || b == nil {
		return nil, err
	}
	var l Lease
	if err := tx.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("rentals: corrupt lease %q: %w", id, err)
	}
	return &l, nil
}

func put(kv *state.Cache, l *Lease) error {
	b, err := tx.Marshal(l)
	if err != nil {
		return err
	}
	kv.Set(keyLease(l.ID), b)
	return nil
}

func nextID(kv *state.Cache) (string, error) {
	n, err := getUint(kv, keySeq)
	if err != nil {
		return "", err
	}
	n++
	putUint(kv, keySeq, n)
	return "rent-" + strconv.FormatUint(n, 10), nil
}

// Live returns how many active leases hold a place on service.
func (*Keeper) Live(r state.Reader, service string) (uint64, error) {
	return getUint(r, keyLive(service))
}
