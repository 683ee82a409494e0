package bank

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// Name is the module's name.
const Name = "bank"

var (
	keySupply  = []byte("bank/supply")
	keyBurned  = []byte("bank/burned")
	keyMinted  = []byte("bank/minted")
	keyGenesis = []byte("bank/genesis")
)

// BalancePrefix is where balances live: BalancePrefix + 20-byte address.
var BalancePrefix = []byte("bank/b/")

func keyBalance(a address.Address) []byte {
	return append(BalancePrefix[:len(BalancePrefix):len(BalancePrefix)], a[:]...)
}

// BalanceKey is the state key of a's balance of denom (Native or a
// registered denomination): what a transfer reads and writes, for callers
// that must know its state keys (the application's recheck).
func BalanceKey(a address.Address, denom string) []byte {
	if denom == Native {
		return keyBalance(a)
	}
	return keyDenomBalance(denom, a)
}

// Keeper reads and writes balances and the supply.
type Keeper struct {
	// blocked are the module accounts: bank/send refuses to pay them.
	blocked   map[address.Address]string
	collector address.Address
	// denoms are the other denominations (RegisterDenom), fixed at wiring.
	denoms map[string]Denom
}

// FeeCollector names the module account where a block's fees (transaction
// fees and protocol fees) wait until the end of the block, which splits
// them between burn, treasury and the proposer. It is empty at every block
// boundary.
const FeeCollector = "fees"

// NewKeeper returns the bank.
func NewKeeper() *Keeper {
	return &Keeper{blocked: map[address.Address]string{}, collector: address.Module(FeeCollector), denoms: map[string]Denom{}}
}

// Accounts implements module.Accounts.
func (*Keeper) Accounts() []string { return []string{FeeCollector} }

// AddModuleAccounts tells the bank which addresses are module accounts
// (see module.Accounts), before the chain starts. It panics on a name used
// twice: two modules sharing an account would break both's invariants.
func (k *Keeper) AddModuleAccounts(names ...string) {
	for _, n := range names {
		a := address.Module(n)
		if _, dup := k.blocked[a]; dup {
			panic("bank: module account " + n + " declared twice")
		}
		k.blocked[a] = n
	}
}

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
	_ module.Accounts   = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// ModuleAccountNames lists the module accounts' names, sorted.
func (k *Keeper) ModuleAccountNames() []string {
	out := make([]string, 0, len(k.blocked))
	for _, n := range k.blocked {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ModuleAccount returns the name of the module account at a, if it is one.
func (k *Keeper) ModuleAccount(a address.Address) (string, bool) {
	n, ok := k.blocked[a]
	return n, ok
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
func (*Keeper) Balance(r state.Reader, a address.Address) (coin.Amount, error) {
	v, err := getUint(r, keyBalance(a))
	return coin.Amount(v), err
}

// Supply is the token supply's ledger.
type Supply struct {
	Circulating coin.Amount // every balance, module accounts included
	Minted      coin.Amount // ever created, genesis included
	Burned      coin.Amount // ever destroyed
	Genesis     coin.Amount // created at genesis
}

// Supply reads the supply ledger.
func (*Keeper) Supply(r state.Reader) (Supply, error) {
	var s Supply
	for _, f := range []struct {
		key []byte
		to  *coin.Amount
	}{{keySupply, &s.Circulating}, {keyMinted, &s.Minted}, {keyBurned, &s.Burned}, {keyGenesis, &s.Genesis}} {
		v, err := getUint(r, f.key)
		if err != nil {
			return s, err
		}
		*f.to = coin.Amount(v)
	}
	return s, nil
}

// sub removes amount from a, failing with ErrInsufficientFunds.
func (k *Keeper) sub(kv *state.Cache, a address.Address, amount coin.Amount) error {
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

// add credits amount to a.
func (k *Keeper) add(kv *state.Cache, a address.Address, amount coin.Amount) error {
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

// Send moves amount from one account to another. Modules use it to move
// funds into and out of their module accounts; it does not refuse module
// accounts (the bank/send message does).
func (k *Keeper) Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error {
	if amount == 0 {
		return ErrZeroAmount
	}
	if err := k.sub(kv, from, amount); err != nil {
		return err
	}
	return k.add(kv, to, amount)
}

// Mint creates amount in account a: the circulating supply and the minted
// total rise by it (genesis accounts; later, rewards).
func (k *Keeper) Mint(kv *state.Cache, a address.Address, amount coin.Amount) error {
	if amount == 0 {
		return nil
	}
	if err := k.add(kv, a, amount); err != nil {
		return err
	}
	return k.bump(kv, amount, keySupply, keyMinted)
}

// Burn destroys amount from account from (a module account holding a
// protocol fee): the circulating supply falls and the burned total rises
// by it.
func (k *Keeper) Burn(kv *state.Cache, from address.Address, amount coin.Amount) error {
	if amount == 0 {
		return nil
	}
	if err := k.sub(kv, from, amount); err != nil {
		return err
	}
	return k.burned(kv, amount)
}

// ChargeFee takes a transaction's fee from its payer (its sender, or the
// module that pays for it). The fees of a block are held by the block's
// execution until CollectFees moves them into the fee collector at its
// end, so between the two they are in no balance; the invariants are
// checked at block boundaries, where that is never the case.
func (k *Keeper) ChargeFee(kv *state.Cache, from address.Address, fee coin.Amount) error {
	return k.sub(kv, from, fee)
}

// CollectFees credits the fees charged during a block (ChargeFee) to the
// fee collector account, where the protocol fees modules sent there
// (CollectFee) already wait; the application then splits the collector's
// balance (burn, treasury, proposer) and leaves it empty.
func (k *Keeper) CollectFees(kv *state.Cache, amount coin.Amount) error {
	if amount == 0 {
		return nil
	}
	return k.add(kv, k.collector, amount)
}

// CollectFee moves a protocol fee (a job's fee) from a module account to
// the fee collector: it is split at the end of the block like transaction
// fees.
func (k *Keeper) CollectFee(kv *state.Cache, from address.Address, amount coin.Amount) error {
	if amount == 0 {
		return nil
	}
	return k.Send(kv, from, k.collector, amount)
}

// Collector is the fee collector account's address.
func (k *Keeper) Collector() address.Address { return k.collector }

// MintGenesis creates amount in account a as part of the genesis supply
// (a module's genesis funding, such as the faucet's): like Mint, and the
// genesis total rises by it too. Only InitGenesis may call it.
func (k *Keeper) MintGenesis(kv *state.Cache, a address.Address, amount coin.Amount) error {
	if err := k.Mint(kv, a, amount); err != nil {
		return err
	}
	return k.bump(kv, amount, keyGenesis)
}

// burned records that amount, already taken out of an account, is destroyed.
func (k *Keeper) burned(kv *state.Cache, amount coin.Amount) error {
	s, err := getUint(kv, keySupply)
	if err != nil {
		return err
	}
	if uint64(amount) > s {
		return fmt.Errorf("bank: burn %s exceeds supply %s", amount, coin.Amount(s))
	}
	putUint(kv, keySupply, s-uint64(amount))
	return k.bump(kv, amount, keyBurned)
}

// bump adds amount to each counter.
func (*Keeper) bump(kv *state.Cache, amount coin.Amount, keys ...[]byte) error {
	for _, key := range keys {
		v, err := getUint(kv, key)
		if err != nil {
			return err
		}
		sum, err := coin.Amount(v).Add(amount)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrOverflow, key)
		}
		putUint(kv, key, uint64(sum))
	}
	return nil
}
