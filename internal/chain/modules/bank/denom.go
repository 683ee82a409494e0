package bank

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// Native is the chain's own denomination. Through the denomination methods
// (BalanceOf, SendDenom, ...) it is the native API (Balance, Send, ...):
// same keys, same supply books.
const Native = "aitbc"

// Denom is a denomination the bank holds besides the native one: a bridged
// asset such as "btc" (in satoshis, 8 decimals). Only the modules named in
// Minters may create or destroy it (the bridge mints a deposit and burns a
// withdrawal); everyone may hold and send it.
type Denom struct {
	Name     string
	Decimals int
	Minters  []string // module names allowed to mint and burn it
}

// Other denominations live apart from the native ones, so that the native
// keys, their fast paths and every module reading BalancePrefix stay as
// they were:
//
//	bank/db/<denom>/<20-byte address>   balance
//	bank/ds/<denom>/{supply,minted,burned}
var (
	denomBalancePrefix = []byte("bank/db/")
	denomSupplyPrefix  = []byte("bank/ds/")
)

// maxDenoms bounds the registered denominations (Balances reads each).
const maxDenoms = 16

// ValidDenomName reports whether s can name a denomination: 2-16 of a-z
// and 0-9, starting with a letter (so it never holds the key separator).
func ValidDenomName(s string) bool {
	if len(s) < 2 || len(s) > 16 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// RegisterDenom adds a denomination, at wiring (internal/chain/modules).
// It panics on an invalid or repeated name: the chain must not start with
// a bank that disagrees with its peers' about what exists.
func (k *Keeper) RegisterDenom(d Denom) {
	switch {
	case !ValidDenomName(d.Name) || d.Name == Native:
		panic("bank: invalid denomination " + d.Name)
	case d.Decimals < 0 || d.Decimals > 18:
		panic("bank: denomination " + d.Name + ": decimals out of range")
	case len(k.denoms) >= maxDenoms:
		panic("bank: too many denominations")
	}
	if _, dup := k.denoms[d.Name]; dup {
		panic("bank: denomination " + d.Name + " registered twice")
	}
	d.Minters = slices.Clone(d.Minters)
	k.denoms[d.Name] = d
}

// Denoms lists the registered denominations, the native one first, then by
// name.
func (k *Keeper) Denoms() []Denom {
	out := []Denom{{Name: Native, Decimals: coin.Decimals}}
	names := make([]string, 0, len(k.denoms))
	for n := range k.denoms {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, k.denoms[n])
	}
	return out
}

// denom returns the registered denomination called name (not the native).
func (k *Keeper) denom(name string) (Denom, error) {
	d, ok := k.denoms[name]
	if !ok {
		return Denom{}, fmt.Errorf("%w: %q", ErrUnknownDenom, name)
	}
	return d, nil
}

func keyDenomBalance(denom string, a address.Address) []byte {
	k := make([]byte, 0, len(denomBalancePrefix)+len(denom)+1+address.Len)
	k = append(append(append(k, denomBalancePrefix...), denom...), '/')
	return append(k, a[:]...)
}

func denomBalancesPrefix(denom string) []byte {
	return append(append(append([]byte(nil), denomBalancePrefix...), denom...), '/')
}

func keyDenomSupply(denom, what string) []byte {
	return []byte(string(denomSupplyPrefix) + denom + "/" + what)
}

// BalanceOf returns a's balance of denom.
func (k *Keeper) BalanceOf(r state.Reader, a address.Address, denom string) (coin.Amount, error) {
	if denom == Native {
		return k.Balance(r, a)
	}
	if _, err := k.denom(denom); err != nil {
		return 0, err
	}
	v, err := getUint(r, keyDenomBalance(denom, a))
	return coin.Amount(v), err
}

// Balances returns a's non-zero balances by denomination (the native one
// always, zero included).
func (k *Keeper) Balances(r state.Reader, a address.Address) (map[string]coin.Amount, error) {
	out := map[string]coin.Amount{}
	for _, d := range k.Denoms() {
		b, err := k.BalanceOf(r, a, d.Name)
		if err != nil {
			return nil, err
		}
		if b != 0 || d.Name == Native {
			out[d.Name] = b
		}
	}
	return out, nil
}

// SendDenom moves amount of denom between accounts; like Send, it does
// not refuse module accounts (the bank/send message does).
func (k *Keeper) SendDenom(kv *state.Cache, from, to address.Address, denom string, amount coin.Amount) error {
	if denom == Native {
		return k.Send(kv, from, to, amount)
	}
	if _, err := k.denom(denom); err != nil {
		return err
	}
	if amount == 0 {
		return ErrZeroAmount
	}
	if err := k.subDenom(kv, from, denom, amount); err != nil {
		return err
	}
	return k.addDenom(kv, to, denom, amount)
}

// MintDenom creates amount of denom in account to, for minter, which must
// be a registered minter of it (the native token is minted by the chain's
// own rules only, never through this).
func (k *Keeper) MintDenom(kv *state.Cache, minter string, to address.Address, denom string, amount coin.Amount) error {
	if err := k.mayMint(minter, denom); err != nil {
		return err
	}
	if amount == 0 {
		return ErrZeroAmount
	}
	if err := k.addDenom(kv, to, denom, amount); err != nil {
		return err
	}
	return k.bump(kv, amount, keyDenomSupply(denom, "supply"), keyDenomSupply(denom, "minted"))
}

// BurnDenom destroys amount of denom from account from, for burner, which
// must be a registered minter of it.
func (k *Keeper) BurnDenom(kv *state.Cache, burner string, from address.Address, denom string, amount coin.Amount) error {
	if err := k.mayMint(burner, denom); err != nil {
		return err
	}
	if amount == 0 {
		return ErrZeroAmount
	}
	if err := k.subDenom(kv, from, denom, amount); err != nil {
		return err
	}
	s, err := getUint(kv, keyDenomSupply(denom, "supply"))
	if err != nil {
		return err
	}
	if uint64(amount) > s {
		return fmt.Errorf("bank: burn %d %s exceeds its supply %d", amount, denom, s)
	}
	putUint(kv, keyDenomSupply(denom, "supply"), s-uint64(amount))
	return k.bump(kv, amount, keyDenomSupply(denom, "burned"))
}

func (k *Keeper) mayMint(module, denom string) error {
	if denom == Native {
		return fmt.Errorf("%w: %s is minted by the chain's own rules", ErrNotMinter, Native)
	}
	d, err := k.denom(denom)
	if err != nil {
		return err
	}
	if !slices.Contains(d.Minters, module) {
		return fmt.Errorf("%w: %q may not mint or burn %s", ErrNotMinter, module, denom)
	}
	return nil
}

// SupplyOf returns the circulating supply of denom.
func (k *Keeper) SupplyOf(r state.Reader, denom string) (coin.Amount, error) {
	s, err := k.DenomSupply(r, denom)
	return s.Circulating, err
}

// DenomSupply returns the supply books of denom (for the native one, what
// Supply returns).
func (k *Keeper) DenomSupply(r state.Reader, denom string) (Supply, error) {
	if denom == Native {
		return k.Supply(r)
	}
	if _, err := k.denom(denom); err != nil {
		return Supply{}, err
	}
	var s Supply
	for _, f := range []struct {
		what string
		to   *coin.Amount
	}{{"supply", &s.Circulating}, {"minted", &s.Minted}, {"burned", &s.Burned}} {
		v, err := getUint(r, keyDenomSupply(denom, f.what))
		if err != nil {
			return s, err
		}
		*f.to = coin.Amount(v)
	}
	return s, nil
}

func (k *Keeper) subDenom(kv *state.Cache, a address.Address, denom string, amount coin.Amount) error {
	key := keyDenomBalance(denom, a)
	bal, err := getUint(kv, key)
	if err != nil {
		return err
	}
	if bal < uint64(amount) {
		return fmt.Errorf("%w: %s has %s %s, needs %s", ErrInsufficientFunds, a, FormatUnits(coin.Amount(bal), k.denoms[denom].Decimals), denom,
			FormatUnits(amount, k.denoms[denom].Decimals))
	}
	putUint(kv, key, bal-uint64(amount))
	return nil
}

func (k *Keeper) addDenom(kv *state.Cache, a address.Address, denom string, amount coin.Amount) error {
	key := keyDenomBalance(denom, a)
	bal, err := getUint(kv, key)
	if err != nil {
		return err
	}
	sum, err := coin.Amount(bal).Add(amount)
	if err != nil {
		return fmt.Errorf("%w: %s %s", ErrOverflow, a, denom)
	}
	putUint(kv, key, uint64(sum))
	return nil
}

// sumDenomBalances adds up every balance of denom, and counts them.
func sumDenomBalances(r state.View, denom string) (coin.Amount, int, error) {
	var sum coin.Amount
	var n int
	var bad error
	err := r.Iterate(denomBalancesPrefix(denom), false, func(_, v []byte) bool {
		if len(v) != 8 {
			bad = fmt.Errorf("corrupt %s balance value %x", denom, v)
			return false
		}
		if sum, bad = sum.Add(coin.Amount(binary.BigEndian.Uint64(v))); bad != nil {
			return false
		}
		n++
		return true
	})
	if err == nil {
		err = bad
	}
	return sum, n, err
}

// FormatUnits writes an amount of base units of a denomination with
// decimals places as a decimal number ("0.5" for 50,000,000 satoshis).
func FormatUnits(a coin.Amount, decimals int) string {
	if decimals == 0 {
		return fmt.Sprint(uint64(a))
	}
	s := new(big.Int).SetUint64(uint64(a)).String()
	if len(s) <= decimals {
		s = strings.Repeat("0", decimals-len(s)+1) + s
	}
	whole, frac := s[:len(s)-decimals], strings.TrimRight(s[len(s)-decimals:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

// ParseUnits reads a non-negative decimal amount with at most decimals
// places into base units.
func ParseUnits(s string, decimals int) (coin.Amount, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if s == "" || whole == "" && frac == "" || hasDot && frac == "" || len(frac) > decimals || !allDigits(whole) || !allDigits(frac) {
		return 0, fmt.Errorf("%w %q: not a decimal amount with at most %d places", coin.ErrInvalid, s, decimals)
	}
	v, ok := new(big.Int).SetString(whole+frac+strings.Repeat("0", decimals-len(frac)), 10)
	if !ok || !v.IsUint64() {
		return 0, fmt.Errorf("%w %q: too large", coin.ErrInvalid, s)
	}
	return coin.Amount(v.Uint64()), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
