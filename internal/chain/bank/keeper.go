package bank

import (
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

var (
	keySupply = []byte("bank/supply")
	keyBurned = []byte("bank/burned")
)

func keyBalance(a address.Address) []byte { return append([]byte("bank/b/"), a[:]...) }

// Keeper reads and writes balances and the supply.
type Keeper struct{}

var _ module.Module = Keeper{}

// Name implements module.Module.
func (Keeper) Name() string { return "bank" }

// Exec implements module.Module.
func (k Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	switch msg.Type {
	case TypeSend:
		to, amount, err := DecodeSend(msg)
		if err != nil {
			return err
		}
		if err := k.Send(ctx.KV, ctx.Signer, to, amount); err != nil {
			return err
		}
		ctx.Touch(to)
		return nil
	default:
		return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
	}
}

func getUint(r state.Reader, key []byte) (uint64, error) {
	v, err := r.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) == 0 {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("bank: corrupt value under %q", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

func putUint(kv *state.Cache, key []byte, v uint64) {
	if v == 0 {
		kv.Delete(key)
		return
	}
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	kv.Set(key, b)
}

// Balance returns the balance of a.
func (Keeper) Balance(r state.Reader, a address.Address) (coin.Amount, error) {
	v, err := getUint(r, keyBalance(a))
	return coin.Amount(v), err
}

// Supply returns the circulating supply and the total burned.
func (Keeper) Supply(r state.Reader) (supply, burned coin.Amount, err error) {
	s, err := getUint(r, keySupply)
	if err != nil {
		return 0, 0, err
	}
	b, err := getUint(r, keyBurned)
	return coin.Amount(s), coin.Amount(b), err
}

// Sub removes amount from a, failing with ErrInsufficientFunds.
func (k Keeper) Sub(kv *state.Cache, a address.Address, amount coin.Amount) error {
	bal, err := k.Balance(kv, a)
	if err != nil {
		return err
	}
	rest, ok := bal.Sub(amount)
	if !ok {
		return fmt.Errorf("%w: %s has %s AITBC, needs %s", ErrInsufficientFunds, a, bal, amount)
	}
	putUint(kv, keyBalance(a), uint64(rest))
	return nil
}

// Add credits amount to a.
func (k Keeper) Add(kv *state.Cache, a address.Address, amount coin.Amount) error {
	bal, err := k.Balance(kv, a)
	if err != nil {
		return err
	}
	sum, err := bal.Add(amount)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrOverflow, a)
	}
	putUint(kv, keyBalance(a), uint64(sum))
	return nil
}

// Send moves amount from one account to another.
func (k Keeper) Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error {
	if amount == 0 {
		return ErrZeroAmount
	}
	if err := k.Sub(kv, from, amount); err != nil {
		return err
	}
	return k.Add(kv, to, amount)
}

// Mint credits amount to a and raises the supply (genesis only).
func (k Keeper) Mint(kv *state.Cache, a address.Address, amount coin.Amount) error {
	if err := k.Add(kv, a, amount); err != nil {
		return err
	}
	s, _, err := k.Supply(kv)
	if err != nil {
		return err
	}
	ns, err := s.Add(amount)
	if err != nil {
		return fmt.Errorf("%w: supply", ErrOverflow)
	}
	putUint(kv, keySupply, uint64(ns))
	return nil
}

// Burn destroys amount that was already taken out of an account: the
// supply falls and the burned total rises by the same amount, so
// supply = genesis - burned holds at every height.
func (k Keeper) Burn(kv *state.Cache, amount coin.Amount) error {
	if amount == 0 {
		return nil
	}
	s, b, err := k.Supply(kv)
	if err != nil {
		return err
	}
	ns, ok := s.Sub(amount)
	if !ok {
		return fmt.Errorf("bank: burn %s exceeds supply %s", amount, s)
	}
	nb, err := b.Add(amount)
	if err != nil {
		return fmt.Errorf("%w: burned", ErrOverflow)
	}
	putUint(kv, keySupply, uint64(ns))
	putUint(kv, keyBurned, uint64(nb))
	return nil
}
