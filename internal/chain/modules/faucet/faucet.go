// Package faucet is the chain module of a devnet's or testnet's faucet:
// the module account "faucet", funded at genesis (the genesis supply
// includes it), pays any address up to `amount` (1,000 AITBC) per
// `period_s` (24 h), enforced on chain per address. The faucet pays the
// fee of a drip itself, so a new address with no balance can ask. A chain
// whose genesis sets enabled to false has no faucet (nothing is funded and
// every drip is refused).
//
// Invariant: the faucet's balance = funded − given − fees it paid.
package faucet

import (
	"fmt"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name; Account its module account.
const (
	Name    = "faucet"
	Account = "faucet"
)

// TypeDrip asks the faucet to pay an address.
const TypeDrip = "faucet/drip"

// Errors of the "faucet" codespace.
var (
	ErrDisabled = errs.Register("faucet", 2, "faucet_disabled", "this chain has no faucet")
	ErrAmount   = errs.Register("faucet", 3, "invalid_faucet_amount", "faucet amount out of range")
	ErrLimit    = errs.Register("faucet", 4, "faucet_limit", "the address has had its faucet allowance for now")
	ErrEmpty    = errs.Register("faucet", 5, "faucet_empty", "the faucet has run dry")
	ErrParams   = errs.Register("faucet", 6, "invalid_faucet_params", "invalid faucet parameters")
)

// Params of the module.
type Params struct {
	Enabled bool        `json:"enabled"`
	Fund    coin.Amount `json:"fund"`     // minted into the faucet at genesis
	Amount  coin.Amount `json:"amount"`   // most one address gets per period
	Period  int64       `json:"period_s"` // seconds
}

// DefaultParams: enabled, funded with 10,000,000 AITBC, 1,000 AITBC per
// address per 24 hours.
func DefaultParams() Params {
	return Params{Enabled: true, Fund: 10_000_000 * coin.Unit, Amount: 1000 * coin.Unit, Period: 86400}
}

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.Enabled && (p.Amount == 0 || p.Period < 1) {
		return fmt.Errorf("%w: amount and period_s must be positive", ErrParams)
	}
	return nil
}

// MsgDrip pays Amount (0: the whole allowance left) to To.
type MsgDrip struct {
	_      struct{} `cbor:",toarray"`
	To     []byte
	Amount coin.Amount
}

// NewDripMsg builds a drip.
func NewDripMsg(to address.Address, amount coin.Amount) tx.Msg {
	m, err := tx.NewMsg(TypeDrip, MsgDrip{To: to[:], Amount: amount})
	if err != nil { // a fixed struct of plain fields always encodes
		panic(err)
	}
	return m
}

// Window is an address's allowance in use: the period that started at
// Start (unix s) and what it was given in it.
type Window struct {
	_     struct{} `cbor:",toarray"`
	Start int64
	Given coin.Amount
}

// Totals are the faucet's books.
type Totals struct {
	_      struct{} `cbor:",toarray"`
	Funded coin.Amount
	Given  coin.Amount
	Fees   coin.Amount
}

var (
	keyParams = []byte("faucet/params")
	keyTotals = []byte("faucet/totals")
)

func keyWindow(a address.Address) []byte { return append([]byte("faucet/w/"), a[:]...) }

// Bank is what the module needs of the bank.
type Bank interface {
	Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
	MintGenesis(kv *state.Cache, a address.Address, amount coin.Amount) error
}

// Keeper implements the module.
type Keeper struct {
	bank Bank
	acct address.Address
}

// NewKeeper returns the module over the bank.
func NewKeeper(b Bank) *Keeper { return &Keeper{bank: b, acct: address.Module(Account)} }

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Accounts   = (*Keeper)(nil)
	_ module.FeePayer   = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Accounts implements module.Accounts.
func (*Keeper) Accounts() []string { return []string{Account} }

// Params reads the parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, Params{})
}

func read[T any](r state.Reader, key []byte) (T, error) {
	var v T
	b, err := r.Get(key)
	if err != nil || b == nil {
		return v, err
	}
	return v, tx.Unmarshal(b, &v)
}

func write(kv *state.Cache, key []byte, v any) error {
	b, err := tx.Marshal(v)
	if err != nil {
		return err
	}
	kv.Set(key, b)
	return nil
}

// InitGenesis implements module.Genesis: the parameters, and the faucet's
// funding when it is enabled.
func (k *Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	if err := module.InitParams(ctx, raw, keyParams, DefaultParams(), Params.Validate); err != nil {
		return fmt.Errorf("faucet: %w", err)
	}
	p, err := k.Params(ctx.KV)
	if err != nil || !p.Enabled || p.Fund == 0 {
		return err
	}
	if err := k.bank.MintGenesis(ctx.KV, k.acct, p.Fund); err != nil {
		return err
	}
	return write(ctx.KV, keyTotals, Totals{Funded: p.Fund})
}

// Exec implements module.Handler.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	if msg.Type != TypeDrip {
		return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
	}
	var m MsgDrip
	if err := msg.DecodeBody(&m); err != nil {
		return err
	}
	to, err := address.FromBytes(m.To)
	if err != nil {
		return fmt.Errorf("%w: %v", errs.ErrInvalidAddress, err)
	}
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if !p.Enabled {
		return ErrDisabled
	}
	if m.Amount > p.Amount {
		return fmt.Errorf("%w: %s AITBC, at most %s per address per %s", ErrAmount, m.Amount, p.Amount, time.Duration(p.Period)*time.Second)
	}
	w, err := read[Window](ctx.KV, keyWindow(to))
	if err != nil {
		return err
	}
	now := ctx.Time.Unix()
	if w.Start == 0 || now >= w.Start+p.Period {
		w = Window{Start: now}
	}
	left := p.Amount - w.Given
	amt := m.Amount
	if amt == 0 {
		amt = left
	}
	if amt == 0 || amt > left {
		wait := time.Duration(w.Start+p.Period-now) * time.Second
		return fmt.Errorf("%w: %s has %s AITBC of its %s left until %s (in %s)", ErrLimit, to, left, p.Amount,
			time.Unix(w.Start+p.Period, 0).UTC().Format(time.RFC3339), wait)
	}
	bal, err := k.bank.Balance(ctx.KV, k.acct)
	if err != nil {
		return err
	}
	if bal < amt {
		return fmt.Errorf("%w: it holds %s AITBC", ErrEmpty, bal)
	}
	if err := k.bank.Send(ctx.KV, k.acct, to, amt); err != nil {
		return err
	}
	w.Given += amt
	t, err := read[Totals](ctx.KV, keyTotals)
	if err != nil {
		return err
	}
	t.Given += amt
	ctx.Touch(to)
	if err := write(ctx.KV, keyTotals, t); err != nil {
		return err
	}
	return write(ctx.KV, keyWindow(to), w)
}

// PayFee implements module.FeePayer: the faucet pays the fee of a drip.
func (k *Keeper) PayFee(ctx *module.Context, msg tx.Msg, fee coin.Amount) (address.Address, bool, error) {
	if msg.Type != TypeDrip {
		return address.Address{}, false, nil
	}
	p, err := k.Params(ctx.KV)
	if err != nil {
		return address.Address{}, false, err
	}
	if !p.Enabled {
		return address.Address{}, false, ErrDisabled
	}
	t, err := read[Totals](ctx.KV, keyTotals)
	if err != nil {
		return address.Address{}, false, err
	}
	t.Fees += fee
	if err := write(ctx.KV, keyTotals, t); err != nil {
		return address.Address{}, false, err
	}
	return k.acct, true, nil
}

// View is GET /api/v1/faucet.
type View struct {
	Params  Params          `json:"params"`
	Address address.Address `json:"address"`
	Balance coin.Amount     `json:"balance"`
	Given   coin.Amount     `json:"given"`
	Fees    coin.Amount     `json:"fees_paid"`
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{{Method: "GET", Path: "/api/v1/faucet", Summary: "the faucet: parameters, balance, what it has given", Handle: k.query}}
}

func (k *Keeper) query(q module.Query, _ module.Request) (any, error) {
	p, err := k.Params(q.State)
	if err != nil {
		return nil, err
	}
	t, err := read[Totals](q.State, keyTotals)
	if err != nil {
		return nil, err
	}
	bal, err := k.bank.Balance(q.State, k.acct)
	if err != nil {
		return nil, err
	}
	return View{Params: p, Address: k.acct, Balance: bal, Given: t.Given, Fees: t.Fees}, nil
}

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{{Name: "faucet/balance", Check: func(q module.Query) module.Finding {
		t, err := read[Totals](q.State, keyTotals)
		if err != nil {
			return module.Finding{Broken: true, Detail: err.Error()}
		}
		bal, err := k.bank.Balance(q.State, k.acct)
		if err != nil {
			return module.Finding{Broken: true, Detail: err.Error()}
		}
		return module.Compare(k.acct, bal, t.Funded-t.Given-t.Fees, "funded less given less fees paid")
	}}}
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	var m MsgDrip
	if msg.Type != TypeDrip {
		return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
	}
	if err := msg.DecodeBody(&m); err != nil {
		return nil, err
	}
	to, err := address.FromBytes(m.To)
	if err != nil {
		return nil, err
	}
	return map[string]any{"to": to, "amount": m.Amount}, nil
}
