// Package miners is the chain module of compute providers: registration
// with a stake and capabilities (models served, GPU, price per 1,000
// output tokens), heartbeats, and deregistration with an unbonding delay
// after which the stake is returned. The jobs module reads the registry to
// check assignments and receipts.
package miners

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/bank"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypeRegister   = "miners/register"
	TypeUpdate     = "miners/update"
	TypeHeartbeat  = "miners/heartbeat"
	TypeDeregister = "miners/deregister"
)

// Errors of the "miners" codespace.
var (
	ErrNotRegistered = errs.Register("miners", 2, "miner_not_registered", "miner not registered")
	ErrRegistered    = errs.Register("miners", 3, "miner_already_registered", "miner already registered")
	ErrStakeTooLow   = errs.Register("miners", 4, "stake_too_low", "stake below the minimum")
	ErrCapabilities  = errs.Register("miners", 5, "invalid_capabilities", "invalid miner capabilities")
	ErrUnbonding     = errs.Register("miners", 6, "miner_unbonding", "miner is unbonding")
)

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

// Capabilities describe what a miner offers.
type Capabilities struct {
	_           struct{} `cbor:",toarray"`
	Models      []string
	GPU         string // e.g. "NVIDIA H100 80GB" or "cpu"
	GPUMemoryMB uint64
	PricePer1k  coin.Amount // per 1,000 output tokens
	Endpoint    string      // optional, informational
}

// Validate checks sizes and characters.
func (c Capabilities) Validate() error {
	if len(c.Models) == 0 || len(c.Models) > 64 {
		return fmt.Errorf("%w: 1 to 64 models", ErrCapabilities)
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		if m == "" || len(m) > 128 || !printable(m) {
			return fmt.Errorf("%w: model name %q", ErrCapabilities, m)
		}
		if seen[m] {
			return fmt.Errorf("%w: model %q listed twice", ErrCapabilities, m)
		}
		seen[m] = true
	}
	if len(c.GPU) > 128 || !printable(c.GPU) || len(c.Endpoint) > 256 || !printable(c.Endpoint) {
		return fmt.Errorf("%w: gpu or endpoint too long or not printable", ErrCapabilities)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Serves reports whether the miner lists model.
func (c Capabilities) Serves(model string) bool {
	for _, m := range c.Models {
		if m == model {
			return true
		}
	}
	return false
}

// MsgRegister registers the signer as a miner, locking Stake.
type MsgRegister struct {
	_     struct{} `cbor:",toarray"`
	Caps  Capabilities
	Stake coin.Amount
}

// MsgUpdate changes the signer's capabilities.
type MsgUpdate struct {
	_    struct{} `cbor:",toarray"`
	Caps Capabilities
}

// MsgHeartbeat records that the miner is alive at the block's time.
type MsgHeartbeat struct {
	_ struct{} `cbor:",toarray"`
}

// MsgDeregister starts unbonding; the stake returns after UnbondingBlocks.
type MsgDeregister struct {
	_ struct{} `cbor:",toarray"`
}

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

func keyMiner(a address.Address) []byte { return append([]byte("miners/m/"), a[:]...) }

func keyUnbond(h int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("miners/u/"), uint64(h))
}

// KeyPrefix is where miner records live, for queries over committed state.
var KeyPrefix = []byte("miners/m/")

// Keeper implements the module.
type Keeper struct {
	Bank bank.Keeper
}

var (
	_ module.Module     = Keeper{}
	_ module.EndBlocker = Keeper{}
	_ module.Genesis    = Keeper{}
)

// Name implements module.Module.
func (Keeper) Name() string { return "miners" }

// InitGenesis implements module.Genesis.
func (Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	p := DefaultParams()
	if raw != nil {
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("miners: genesis: %w", err)
		}
	}
	if p.UnbondingBlocks < 1 {
		return fmt.Errorf("miners: unbonding_blocks must be at least 1")
	}
	b, err := tx.Marshal(p)
	if err != nil {
		return err
	}
	ctx.KV.Set(keyParams, b)
	return nil
}

// Params reads the module parameters.
func (Keeper) Params(r state.Reader) (Params, error) {
	var p Params
	b, err := r.Get(keyParams)
	if err != nil {
		return p, err
	}
	if b == nil {
		return DefaultParams(), nil
	}
	return p, tx.Unmarshal(b, &p)
}

// Get returns the miner at a, or nil.
func (Keeper) Get(r state.Reader, a address.Address) (*Miner, error) {
	b, err := r.Get(keyMiner(a))
	if err != nil || b == nil {
		return nil, err
	}
	var m Miner
	if err := tx.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("miners: corrupt record of %s: %w", a, err)
	}
	return &m, nil
}

// Decode decodes a miner record (for queries over committed state).
func Decode(b []byte) (*Miner, error) {
	var m Miner
	if err := tx.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func (Keeper) put(kv *state.Cache, m *Miner) error {
	b, err := tx.Marshal(m)
	if err != nil {
		return err
	}
	kv.Set(keyMiner(m.Addr()), b)
	return nil
}

// RecordSettlement counts a settled job for the miner (its track record).
func (k Keeper) RecordSettlement(kv *state.Cache, a address.Address, tokensOut uint64) error {
	m, err := k.Get(kv, a)
	if err != nil || m == nil {
		return err
	}
	m.JobsSettled++
	m.TokensOut += tokensOut
	return k.put(kv, m)
}

// Exec implements module.Module.
func (k Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	switch msg.Type {
	case TypeRegister:
		var m MsgRegister
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.register(ctx, m)
	case TypeUpdate:
		var m MsgUpdate
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		if err := m.Caps.Validate(); err != nil {
			return err
		}
		cur, err := k.active(ctx)
		if err != nil {
			return err
		}
		cur.Caps = m.Caps
		return k.put(ctx.KV, cur)
	case TypeHeartbeat:
		var m MsgHeartbeat
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		cur, err := k.active(ctx)
		if err != nil {
			return err
		}
		cur.LastHeartbeat = ctx.Time.Unix()
		return k.put(ctx.KV, cur)
	case TypeDeregister:
		var m MsgDeregister
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.deregister(ctx)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

func (k Keeper) active(ctx *module.Context) (*Miner, error) {
	cur, err := k.Get(ctx.KV, ctx.Signer)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotRegistered, ctx.Signer)
	}
	if cur.Status != StatusActive {
		return nil, fmt.Errorf("%w: %s", ErrUnbonding, ctx.Signer)
	}
	return cur, nil
}

func (k Keeper) register(ctx *module.Context, m MsgRegister) error {
	if err := m.Caps.Validate(); err != nil {
		return err
	}
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if m.Stake < p.MinStake {
		return fmt.Errorf("%w: %s AITBC, minimum %s", ErrStakeTooLow, m.Stake, p.MinStake)
	}
	cur, err := k.Get(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	if cur != nil {
		if cur.Status == StatusUnbonding {
			return fmt.Errorf("%w: %s until height %d", ErrUnbonding, ctx.Signer, cur.UnbondAt)
		}
		return fmt.Errorf("%w: %s", ErrRegistered, ctx.Signer)
	}
	if err := k.Bank.Sub(ctx.KV, ctx.Signer, m.Stake); err != nil {
		return err
	}
	return k.put(ctx.KV, &Miner{
		Address: ctx.Signer[:], PubKey: ctx.SignerKey, Caps: m.Caps, Stake: m.Stake,
		Status: StatusActive, Registered: ctx.Height, LastHeartbeat: ctx.Time.Unix(),
	})
}

func (k Keeper) deregister(ctx *module.Context) error {
	cur, err := k.active(ctx)
	if err != nil {
		return err
	}
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	cur.Status = StatusUnbonding
	cur.UnbondAt = ctx.Height + p.UnbondingBlocks
	if err := k.put(ctx.KV, cur); err != nil {
		return err
	}
	return appendAddr(ctx.KV, keyUnbond(cur.UnbondAt), ctx.Signer)
}

// EndBlock returns the stake of miners whose unbonding ends at this height.
func (k Keeper) EndBlock(ctx *module.Context) error {
	key := keyUnbond(ctx.Height)
	list, err := readAddrs(ctx.KV, key)
	if err != nil {
		return err
	}
	for _, a := range list {
		m, err := k.Get(ctx.KV, a)
		if err != nil {
			return err
		}
		if m == nil || m.Status != StatusUnbonding || m.UnbondAt != ctx.Height {
			continue
		}
		if err := k.Bank.Add(ctx.KV, a, m.Stake); err != nil {
			return err
		}
		ctx.KV.Delete(keyMiner(a))
	}
	if list != nil {
		ctx.KV.Delete(key)
	}
	return nil
}

func readAddrs(r state.Reader, key []byte) ([]address.Address, error) {
	b, err := r.Get(key)
	if err != nil || b == nil {
		return nil, err
	}
	var raw [][]byte
	if err := tx.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make([]address.Address, 0, len(raw))
	for _, r := range raw {
		a, err := address.FromBytes(r)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func appendAddr(kv *state.Cache, key []byte, a address.Address) error {
	list, err := readAddrs(kv, key)
	if err != nil {
		return err
	}
	raw := make([][]byte, 0, len(list)+1)
	for _, x := range list {
		raw = append(raw, x[:])
	}
	raw = append(raw, a[:])
	b, err := tx.Marshal(raw)
	if err != nil {
		return err
	}
	kv.Set(key, b)
	return nil
}

// NewRegisterMsg builds a registration message.
func NewRegisterMsg(caps Capabilities, stake coin.Amount) (tx.Msg, error) {
	if err := caps.Validate(); err != nil {
		return tx.Msg{}, err
	}
	return tx.NewMsg(TypeRegister, MsgRegister{Caps: caps, Stake: stake})
}

// NewUpdateMsg builds a capabilities update.
func NewUpdateMsg(caps Capabilities) (tx.Msg, error) {
	if err := caps.Validate(); err != nil {
		return tx.Msg{}, err
	}
	return tx.NewMsg(TypeUpdate, MsgUpdate{Caps: caps})
}

// NewHeartbeatMsg builds a heartbeat.
func NewHeartbeatMsg() tx.Msg {
	m, _ := tx.NewMsg(TypeHeartbeat, MsgHeartbeat{})
	return m
}

// NewDeregisterMsg builds a deregistration.
func NewDeregisterMsg() tx.Msg {
	m, _ := tx.NewMsg(TypeDeregister, MsgDeregister{})
	return m
}
