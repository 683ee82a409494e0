// Package treasury is the chain module that spends the treasury: the
// module account "treasury" that the rewards module fills (its share of
// every block's reward, what nobody earned, its share of every block's
// fees). Only the admin named in genesis may spend, with treasury/spend;
// a chain whose genesis names none cannot spend at all. The admin is meant
// to be a multisig account created in the same genesis (the multisig
// module's "accounts"), so that a spend needs its threshold of signatures:
// its signers propose and sign a treasury/spend through it.
//
// Each spend is kept in a log (height, recipient, amount, memo); the
// rewards module keeps the total spent, and its invariant holds the
// treasury's balance to what was paid in less what was spent. This
// module's invariant holds the log to that total.
package treasury

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "treasury"

// TypeSpend pays from the treasury (signer: the admin).
const TypeSpend = "treasury/spend"

// MaxMemo bounds a spend's memo, in bytes.
const MaxMemo = 256

// Errors of the "treasury" codespace.
var (
	ErrParams    = errs.Register("treasury", 2, "invalid_treasury_params", "invalid treasury parameters")
	ErrNoAdmin   = errs.Register("treasury", 3, "treasury_locked", "this chain's genesis names no treasury admin: the treasury cannot spend")
	ErrNotAdmin  = errs.Register("treasury", 4, "not_treasury_admin", "only the treasury admin may spend")
	ErrAmount    = errs.Register("treasury", 5, "invalid_treasury_amount", "a spend must be a positive amount")
	ErrRecipient = errs.Register("treasury", 6, "invalid_treasury_recipient", "the treasury cannot pay this recipient")
	ErrMemo      = errs.Register("treasury", 7, "invalid_treasury_memo", "the memo is too long or not UTF-8")
)

// Params of the module.
type Params struct {
	// Admin is the address that may spend (aitbc1...; usually a genesis
	// multisig account: multisig.Address(name)). "": nobody.
	Admin string `json:"admin,omitempty"`
}

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.Admin == "" {
		return nil
	}
	a, err := address.Parse(p.Admin)
	if err != nil || a.IsZero() {
		return fmt.Errorf("%w: admin %q is not an address", ErrParams, p.Admin)
	}
	return nil
}

// MsgSpend pays Amount from the treasury to To.
type MsgSpend struct {
	_      struct{} `cbor:",toarray"`
	To     []byte
	Amount coin.Amount
	Memo   string
}

// NewSpendMsg builds a spend.
func NewSpendMsg(to address.Address, amount coin.Amount, memo string) tx.Msg {
	m, err := tx.NewMsg(TypeSpend, MsgSpend{To: to[:], Amount: amount, Memo: memo})
	if err != nil { // a fixed struct of plain fields always encodes
		panic(err)
	}
	return m
}

// Spend is one entry of the log.
type Spend struct {
	_      struct{} `cbor:",toarray"`
	Height int64
	To     []byte
	Amount coin.Amount
	Memo   string
	TxHash []byte
}

var (
	keyParams = []byte("treasury/params")
	keySeq    = []byte("treasury/seq")
	// SpendPrefix + 8-byte sequence number: the log.
	SpendPrefix = []byte("treasury/s/")
)

func keySpend(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(SpendPrefix[:len(SpendPrefix):len(SpendPrefix)], seq)
}

// Treasury is what the module needs of the rewards module, which owns the
// treasury account and its books.
type Treasury interface {
	Treasury() address.Address
	SpendTreasury(kv *state.Cache, to address.Address, amount coin.Amount) error
	TreasurySpent(r state.Reader) (coin.Amount, error)
}

// Bank is what the module needs of the bank.
type Bank interface {
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
	ModuleAccount(a address.Address) (string, bool)
}

// Keeper implements the module.
type Keeper struct {
	bank     Bank
	treasury Treasury
}

// NewKeeper returns the module over the bank and the rewards module.
func NewKeeper(b Bank, t Treasury) *Keeper { return &Keeper{bank: b, treasury: t} }

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Exporter   = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Params reads the parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, Params{})
}

// Exec implements module.Handler.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	if msg.Type != TypeSpend {
		return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
	}
	var m MsgSpend
	if err := msg.DecodeBody(&m); err != nil {
		return err
	}
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if p.Admin == "" {
		return ErrNoAdmin
	}
	if ctx.Signer.String() != p.Admin {
		return fmt.Errorf("%w: the admin is %s, not %s", ErrNotAdmin, p.Admin, ctx.Signer)
	}
	to, err := address.FromBytes(m.To)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRecipient, err)
	}
	if to.IsZero() {
		return fmt.Errorf("%w: the all-zero address", ErrRecipient)
	}
	if name, ok := k.bank.ModuleAccount(to); ok {
		// A module account's balance must equal its module's records.
		return fmt.Errorf("%w: %s is the module account %s", ErrRecipient, to, name)
	}
	if m.Amount == 0 {
		return ErrAmount
	}
	if len(m.Memo) > MaxMemo || !utf8.ValidString(m.Memo) {
		return fmt.Errorf("%w: %d bytes, at most %d of UTF-8", ErrMemo, len(m.Memo), MaxMemo)
	}
	if err := k.treasury.SpendTreasury(ctx.KV, to, m.Amount); err != nil {
		return err
	}
	seq, err := getUint(ctx.KV, keySeq)
	if err != nil {
		return err
	}
	b, err := tx.Marshal(Spend{Height: ctx.Height, To: to[:], Amount: m.Amount, Memo: m.Memo, TxHash: ctx.TxHash[:]})
	if err != nil {
		return err
	}
	ctx.KV.Set(keySpend(seq), b)
	ctx.KV.Set(keySeq, binary.BigEndian.AppendUint64(nil, seq+1))
	ctx.Touch(to)
	ctx.Touch(k.treasury.Treasury())
	ctx.Note(fmt.Sprintf("treasury spend %d: %s AITBC to %s", seq, m.Amount, to))
	return nil
}

func getUint(r state.Reader, key []byte) (uint64, error) {
	b, err := r.Get(key)
	if err != nil || b == nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("treasury: corrupt value under %q", key)
	}
	return binary.BigEndian.Uint64(b), nil
}

// InitGenesis implements module.Genesis: the parameters (the admin).
func (*Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	if err := module.InitParams(ctx, raw, keyParams, Params{}, Params.Validate); err != nil {
		return fmt.Errorf("treasury: %w", err)
	}
	return nil
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	if msg.Type != TypeSpend {
		return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
	}
	var m MsgSpend
	if err := msg.DecodeBody(&m); err != nil {
		return nil, err
	}
	to, err := address.FromBytes(m.To)
	if err != nil {
		return nil, err
	}
	return map[string]any{"to": to, "amount": m.Amount, "memo": m.Memo}, nil
}

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{{Name: "treasury/spends", Check: k.checkSpends}}
}

// checkSpends: the log of spends sums to what the rewards module counts
// as spent from the treasury.
func (k *Keeper) checkSpends(q module.Query) module.Finding {
	var sum coin.Amount
	var bad error
	err := q.State.Iterate(SpendPrefix, false, func(_, v []byte) bool {
		var s Spend
		if bad = tx.Unmarshal(v, &s); bad != nil {
			return false
		}
		sum += s.Amount
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	spent, err := k.treasury.TreasurySpent(q.State)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Finding{
		Broken:  sum != spent,
		Detail:  "the spend log sums to " + sum.String() + " AITBC, the treasury's books say " + spent.String() + " spent",
		Figures: map[string]string{"log": sum.String(), "spent": spent.String()},
	}
}
