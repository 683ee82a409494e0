// Package exchange is the chain module of the AITBC/BTC order book: limit
// and market orders, cancels and expiry by height, cleared once per block
// in EndBlock by a uniform-price batch auction (a frequent batch auction,
// as Injective's exchange module clears): every order placed during a
// block waits for the block's end, so nobody gains by seeing an order
// first. Fills, fees and balances are settled in the same block.
//
// Base asset AITBC (base units of 10^-6), quote asset btc (satoshis).
// Prices are integers of millisatoshi per AITBC: 1 BTC = 100,000 AITBC is
// 1,000 sat per AITBC, 1,000,000 msat. An open order's funds sit in the
// module account "exchange": a buy holds its amount × price in btc
// (rounded up to the satoshi), a sell its amount plus the most fee it can
// pay in AITBC. Closed orders are removed; the trades stay (the newest
// MaxTradesKept).
//
// Invariants (checked after every block in tests and by aitbc chain
// audit): the module account holds, per denomination, the sum of the open
// orders' held funds; every order is in the book index once.
//
// Imported by internal/chain/modules (wiring) and by clients (the CLI, the
// exchange API server) for the message builders and typed queries.
package exchange

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name and its module account.
const Name = "exchange"

// Quote is the quote denomination (bridged Bitcoin, satoshis).
const QuoteDenom = "btc"

// Base is the base denomination.
const BaseDenom = "aitbc"

// MaxTradesKept bounds the trades kept in state (the newest).
const MaxTradesKept = 20_000

// Errors of the "exchange" codespace.
var (
	ErrParams         = errs.Register("exchange", 2, "invalid_exchange_params", "invalid exchange parameters")
	ErrPrice          = errs.Register("exchange", 3, "invalid_order_price", "the price must be positive and at most the maximum price")
	ErrAmount         = errs.Register("exchange", 4, "invalid_order_amount", "the amount must be a positive multiple of the lot size")
	ErrBelowMinimum   = errs.Register("exchange", 5, "order_below_minimum", "the order is below the minimum amount or value")
	ErrBeyondBalance  = errs.Register("exchange", 6, "order_exceeds_balance", "the order needs more than the account holds")
	ErrOrderNotFound  = errs.RegisterNotFound("exchange", 7, "order_not_found", "no open order with this id")
	ErrNotOwner       = errs.Register("exchange", 8, "not_order_owner", "only the order's owner may cancel it")
	ErrTooManyOpen    = errs.Register("exchange", 9, "too_many_open_orders", "the account has the most open orders allowed")
	ErrBlockFull      = errs.Register("exchange", 10, "exchange_block_full", "this block takes no more orders; try the next")
	ErrSelfTrade      = errs.Register("exchange", 11, "self_trade", "the order would match one of its owner's own open orders")
	ErrSide           = errs.Register("exchange", 12, "invalid_order_side", "the side must be buy or sell")
	ErrExpiry         = errs.Register("exchange", 13, "invalid_order_expiry", "the expiry height must be after the current height and within the longest lifetime")
	ErrInvalidAddress = errs.Register("exchange", 14, "invalid_exchange_query", "invalid query argument")
)

// Side of an order.
type Side uint8

// The sides.
const (
	Buy  Side = 1 // buy AITBC, pay btc
	Sell Side = 2 // sell AITBC, get btc
)

func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return fmt.Sprintf("side(%d)", uint8(s))
}

// ParseSide reads "buy" or "sell".
func ParseSide(s string) (Side, error) {
	switch s {
	case "buy":
		return Buy, nil
	case "sell":
		return Sell, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrSide, s)
}

// Params of the module (genesis app_state.modules.exchange).
type Params struct {
	// FeeBps is the fee on each fill, paid by both sides in AITBC: basis
	// points of the AITBC traded. It goes to the fee collector, split like
	// transaction fees (burn, treasury, proposer).
	FeeBps uint64 `json:"fee_bps"`
	// LotSize: every amount is a multiple of it (AITBC base units), so
	// that fees divide evenly.
	LotSize uint64 `json:"lot_size"`
	// MinAmount is the smallest order, AITBC base units.
	MinAmount uint64 `json:"min_amount"`
	// MinValue is the smallest order value, satoshis.
	MinValue uint64 `json:"min_value"`
	// MaxPrice bounds a price, millisatoshi per AITBC.
	MaxPrice uint64 `json:"max_price"`
	// MaxOpenPerAccount bounds an account's open orders.
	MaxOpenPerAccount uint64 `json:"max_open_per_account"`
	// MaxOrdersPerBlock bounds the orders placed in one block, and the
	// orders expiring at one height: the auction's work per block.
	MaxOrdersPerBlock uint64 `json:"max_orders_per_block"`
	// MaxLifetime bounds an order's expiry, in blocks from placement;
	// DefaultLifetime is used when the order names none.
	MaxLifetime     int64 `json:"max_lifetime"`
	DefaultLifetime int64 `json:"default_lifetime"`
}

// DefaultParams are a new chain's parameters.
func DefaultParams() Params {
	return Params{
		FeeBps: 10, LotSize: 1000, MinAmount: 1_000_000, MinValue: 1,
		MaxPrice: 1_000_000_000_000, MaxOpenPerAccount: 200, MaxOrdersPerBlock: 20_000,
		MaxLifetime: 1_000_000, DefaultLifetime: 100_000,
	}
}

// Validate checks the parameters.
func (p Params) Validate() error {
	switch {
	case p.FeeBps > 1000:
		return fmt.Errorf("%w: fee_bps %d above 1000 (10%%)", ErrParams, p.FeeBps)
	case p.LotSize == 0 || p.MinAmount < p.LotSize || p.MinAmount%p.LotSize != 0:
		return fmt.Errorf("%w: lot_size must be positive and min_amount a multiple of it", ErrParams)
	case p.MaxPrice == 0 || p.MaxPrice > 1<<50:
		return fmt.Errorf("%w: max_price out of range", ErrParams)
	case p.MaxOpenPerAccount == 0 || p.MaxOrdersPerBlock == 0:
		return fmt.Errorf("%w: order limits must be positive", ErrParams)
	case p.DefaultLifetime <= 0 || p.MaxLifetime < p.DefaultLifetime:
		return fmt.Errorf("%w: lifetimes must be positive, default ≤ max", ErrParams)
	}
	return nil
}

// Order is an open order's record.
type Order struct {
	_      struct{} `cbor:",toarray"`
	ID     uint64
	Owner  []byte
	Side   Side
	Market bool   // immediate or cancel: what the block's auction does not fill is refunded
	Price  uint64 // limit (for a market order: the worst price accepted), msat per AITBC
	Amount uint64 // AITBC base units ordered
	Filled uint64 // AITBC base units filled
	// Held is what the module account still holds for the order: btc for
	// a buy, AITBC for a sell.
	Held     uint64
	Height   int64  // placed at
	Expires  int64  // last height it trades at
	Received uint64 // what fills paid it: AITBC (buy, net of fees) or btc (sell)
}

// Left is the AITBC still to fill.
func (o Order) Left() uint64 { return o.Amount - o.Filled }

// HeldDenom is the denomination the order holds.
func (o Order) HeldDenom() string {
	if o.Side == Buy {
		return QuoteDenom
	}
	return BaseDenom
}

// Trade is one fill between a buy and a sell order.
type Trade struct {
	_        struct{} `cbor:",toarray"`
	Seq      uint64
	Height   int64
	Time     int64 // block time, unix seconds
	Price    uint64
	Amount   uint64 // AITBC base units
	Quote    uint64 // satoshis
	Buy      uint64 // order ids
	Sell     uint64
	Buyer    []byte
	Seller   []byte
	BuyerFee uint64 // AITBC base units
	SellFee  uint64
}

// Bank is what the exchange needs of the bank.
type Bank interface {
	BalanceOf(r state.Reader, a address.Address, denom string) (coin.Amount, error)
	SendDenom(kv *state.Cache, from, to address.Address, denom string, amount coin.Amount) error
	CollectFee(kv *state.Cache, from address.Address, amount coin.Amount) error
}

// Keeper owns the order book.
type Keeper struct {
	bank    Bank
	account address.Address
	// params memoises the last decoded parameters with the stored bytes
	// they came from: every order reads them, and decoding them (CBOR,
	// reflection) was a third of placing an order. The state stays the
	// authority: a different stored value is decoded afresh. Atomic
	// because CheckTx and FinalizeBlock run the keeper concurrently.
	params atomic.Pointer[paramsMemo]
}

type paramsMemo struct {
	raw []byte
	p   Params
}

// NewKeeper returns the exchange module.
func NewKeeper(b Bank) *Keeper { return &Keeper{bank: b, account: address.Module(Name)} }

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.EndBlocker = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Exporter   = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
	_ module.Accounts   = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Accounts implements module.Accounts.
func (*Keeper) Accounts() []string { return []string{Name} }

// Account is the module account holding open orders' funds.
func (k *Keeper) Account() address.Address { return k.account }

// State keys, all under "exchange/":
//
//	params                          Params
//	seq, tseq                       last order id, last trade seq
//	blk                             height(8) + orders placed at it(8)
//	o/<id>                          Order
//	b/<^price><id>, s/<price><id>   the book: buys best (highest) first, sells lowest first
//	ow/<owner><id>                  an owner's open orders
//	oc/<owner><side>                an owner's open orders on one side, counted
//	mk/<id>                         market orders waiting for the block's auction
//	ex/<height><id>, exn/<height>   expiries by height, and their count
//	t/<seq>                         Trade
//	last                            last clearing price and its height
var (
	keyParams    = []byte("exchange/params")
	keySeq       = []byte("exchange/seq")
	keyTradeSeq  = []byte("exchange/tseq")
	keyBlock     = []byte("exchange/blk")
	keyLast      = []byte("exchange/last")
	prefixOrder  = []byte("exchange/o/")
	prefixBuys   = []byte("exchange/b/")
	prefixSells  = []byte("exchange/s/")
	prefixOwner  = []byte("exchange/ow/")
	prefixCount  = []byte("exchange/oc/")
	prefixMarket = []byte("exchange/mk/")
	prefixExpiry = []byte("exchange/ex/")
	prefixExpN   = []byte("exchange/exn/")
	prefixTrade  = []byte("exchange/t/")
)

func be(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

func cat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// key is prefix, then part, then the numbers big-endian, in one
// allocation: every order writes several such keys.
func key(prefix, part []byte, nums ...uint64) []byte {
	out := make([]byte, 0, len(prefix)+len(part)+8*len(nums))
	out = append(append(out, prefix...), part...)
	for _, v := range nums {
		out = binary.BigEndian.AppendUint64(out, v)
	}
	return out
}

func keyOrder(id uint64) []byte { return key(prefixOrder, nil, id) }

func keyBook(o Order) []byte {
	if o.Side == Buy {
		return key(prefixBuys, nil, ^o.Price, o.ID)
	}
	return key(prefixSells, nil, o.Price, o.ID)
}

func keyOwner(owner []byte, id uint64) []byte { return key(prefixOwner, owner, id) }
func keyCount(owner []byte, side Side) []byte {
	out := make([]byte, 0, len(prefixCount)+len(owner)+1)
	return append(append(append(out, prefixCount...), owner...), byte(side))
}
func keyMarket(id uint64) []byte          { return key(prefixMarket, nil, id) }
func keyExpiry(h int64, id uint64) []byte { return key(prefixExpiry, nil, uint64(h), id) }
func keyExpN(h int64) []byte              { return key(prefixExpN, nil, uint64(h)) }
func keyTrade(seq uint64) []byte          { return key(prefixTrade, nil, seq) }

func getUint(r state.Reader, key []byte) (uint64, error) {
	v, err := r.Get(key)
	if err != nil || len(v) == 0 {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("exchange: corrupt value under %q", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

func putUint(kv *state.Cache, key []byte, v uint64) {
	if v == 0 {
		kv.Delete(key)
		return
	}
	kv.Set(key, be(v))
}

// Params reads the parameters.
func (k *Keeper) Params(r state.Reader) (Params, error) {
	raw, err := r.Get(keyParams)
	if err != nil || raw == nil { // a chain from before the module had parameters
		return DefaultParams(), err
	}
	if m := k.params.Load(); m != nil && bytes.Equal(m.raw, raw) {
		return m.p, nil
	}
	var p Params // decoded as module.ReadParams does
	if err := tx.Unmarshal(raw, &p); err != nil {
		return p, err
	}
	k.params.Store(&paramsMemo{raw: bytes.Clone(raw), p: p})
	return p, nil
}
