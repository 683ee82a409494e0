// Package bridge is the chain module of the Bitcoin bridge: bitcoin
// deposited to the bridge's addresses is minted as `btc` on AITBC, and
// `btc` burned on AITBC is paid out in bitcoin.
//
// Deposits. Each account asks once for its own deposit address
// (bridge/address): the module derives it, with the next index, as the
// threshold-of-n P2WSH of the operators' keys at xpub_i/0/index (BIP 32,
// keys sorted as BIP 67 says; custody.go), and records the index, so two
// accounts never share an address.
// The bridge's operators (an m-of-n set of AITBC keys in the module's
// parameters) watch Bitcoin; once a deposit has `confirmations` blocks
// each attests it (bridge/attest: txid, vout, address, amount, block);
// when `threshold` operators agree, the module mints the amount, to the
// satoshi, to the address's account. A deposit (txid:vout) is minted
// once: the record is kept forever.
//
// Withdrawals. The owner burns btc (bridge/withdraw, to a Bitcoin address
// of the bridge's network, at least min_withdraw_sat); the module records
// a pending withdrawal paying the amount less withdraw_fee_sat (the fee the
// bridge pays on Bitcoin). The payout moves on chain (payout.go): the
// designated operator proposes the unsigned transaction, which the module
// checks against its record of the bridge's outputs and whose inputs it
// locks (bridge/propose_payout); operators post signature shares the
// module verifies (bridge/sign_payout); with threshold shares any operator
// broadcasts it and records its txid (bridge/paid), once.
//
// Halting. An operator that sees a minted deposit's block leave Bitcoin's
// main chain (a reorganisation deeper than the confirmations) halts the
// bridge (bridge/halt): from then on it mints nothing and takes no
// withdrawal, until a new genesis or an upgrade decides.
//
// Invariants: `btc` supply = minted − withdrawn; withdrawn − paid-out
// withdrawals = the sum of pending withdrawals; an output is locked by a
// withdrawal exactly when its proposal spends it.
package bridge

import (
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name, and the minter of `btc` in the bank.
const Name = "bridge"

// Denom is the bank denomination the bridge mints and burns (8 decimals:
// one unit is one satoshi).
const Denom = "btc"

// MaxSat is the most satoshis there can ever be (21 million bitcoin).
const MaxSat = 21_000_000 * 100_000_000

// Bank is what the module needs of the bank's denominations.
type Bank interface {
	MintDenom(kv *state.Cache, minter string, to address.Address, denom string, amount coin.Amount) error
	BurnDenom(kv *state.Cache, burner string, from address.Address, denom string, amount coin.Amount) error
	BalanceOf(r state.Reader, a address.Address, denom string) (coin.Amount, error)
	SupplyOf(r state.Reader, denom string) (coin.Amount, error)
}

// Keeper implements the module.
type Keeper struct{ bank Bank }

// NewKeeper returns the module over the bank.
func NewKeeper(b Bank) *Keeper { return &Keeper{bank: b} }

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
	_ module.Exporter   = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Deposit is a Bitcoin output paid to a deposit address, as attested.
type Deposit struct {
	_         struct{} `cbor:",toarray"`
	Account   []byte
	Address   string
	Amount    uint64 // satoshis
	BlockHash []byte // 32 bytes, Bitcoin's internal byte order
	BlockH    int64  // Bitcoin height of BlockHash
	Attesters [][]byte
	Minted    int64 // AITBC height of the mint; 0: not yet
}

// Withdrawal is btc burned on AITBC, to be paid on Bitcoin.
type Withdrawal struct {
	_      struct{} `cbor:",toarray"`
	Owner  []byte
	To     string
	Amount uint64 // satoshis burned
	Fee    uint64 // satoshis the bridge pays Bitcoin's miners from Amount
	Height int64  // AITBC height it was made at
	PaidTx []byte // Bitcoin txid of the payment (32 bytes); nil: pending
	PaidBy []byte // operator that recorded it
	PaidAt int64  // AITBC height it was recorded at
}

// Totals are the bridge's books, in satoshis.
type Totals struct {
	_         struct{} `cbor:",toarray"`
	Minted    uint64
	Withdrawn uint64 // burned by withdrawals
	PaidOut   uint64 // of Withdrawn, the withdrawals whose payment is recorded
	Deposits  uint64 // minted deposits
	Next      uint64 // next deposit address index
	NextWD    uint64 // next withdrawal id
}

// Halt is why and when the bridge stopped.
type Halt struct {
	_      struct{} `cbor:",toarray"`
	Reason string
	By     []byte
	Height int64
}

// Assigned is an account's deposit address.
type Assigned struct {
	_       struct{} `cbor:",toarray"`
	Index   uint32
	Address string
}

var (
	keyParams = []byte("bridge/params")
	keyTotals = []byte("bridge/totals")
	keyHalt   = []byte("bridge/halt")
)

const (
	pAcct = "bridge/acct/" // account → Assigned
	pAddr = "bridge/addr/" // Bitcoin address → account
	pIdx  = "bridge/idx/"  // index (4 bytes BE) → account
	pDep  = "bridge/dep/"  // txid (32) + vout (4 BE) → Deposit
	pWD   = "bridge/wd/"   // id (8 BE) → Withdrawal
	pWDP  = "bridge/wdp/"  // pending withdrawals: id (8 BE) → empty
	pAD   = "bridge/ad/"   // account (20) + txid (32) + vout (4 BE) → {1}: an account's deposits
)

func keyAcct(a address.Address) []byte { return append([]byte(pAcct), a[:]...) }
func keyAddr(s string) []byte          { return append([]byte(pAddr), s...) }
func keyIdx(i uint32) []byte           { return binary.BigEndian.AppendUint32([]byte(pIdx), i) }
func keyWD(id uint64) []byte           { return binary.BigEndian.AppendUint64([]byte(pWD), id) }
func keyWDP(id uint64) []byte          { return binary.BigEndian.AppendUint64([]byte(pWDP), id) }
func keyAcctDep(a address.Address, txid []byte, vout uint32) []byte {
	return binary.BigEndian.AppendUint32(append(append([]byte(pAD), a[:]...), txid...), vout)
}
func keyDep(txid []byte, vout uint32) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(pDep), txid...), vout)
}

func read[T any](r state.Reader, key []byte) (T, bool, error) {
	var v T
	b, err := r.Get(key)
	if err != nil || b == nil {
		return v, false, err
	}
	return v, true, tx.Unmarshal(b, &v)
}

func write(kv *state.Cache, key []byte, v any) error {
	b, err := tx.Marshal(v)
	if err != nil {
		return err
	}
	kv.Set(key, b)
	return nil
}

// Params reads the parameters (the zero, disabled bridge before genesis).
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, Params{})
}

func (*Keeper) totals(r state.Reader) (Totals, error) {
	t, _, err := read[Totals](r, keyTotals)
	return t, err
}

// Halted returns the halt, if the bridge is halted.
func (*Keeper) Halted(r state.Reader) (*Halt, error) {
	h, ok, err := read[Halt](r, keyHalt)
	if err != nil || !ok {
		return nil, err
	}
	return &h, nil
}

func (k *Keeper) checkOpen(r state.Reader) (Params, error) {
	p, err := k.Params(r)
	if err != nil {
		return p, err
	}
	if !p.Enabled() {
		return p, ErrDisabled
	}
	h, err := k.Halted(r)
	if err != nil {
		return p, err
	}
	if h != nil {
		return p, fmt.Errorf("%w since AITBC height %d: %s", ErrHalted, h.Height, h.Reason)
	}
	return p, nil
}
