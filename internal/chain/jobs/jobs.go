// Package jobs is the chain module of paid AI jobs: escrow when a job is
// created (the customer's maximum price is locked), assignment to a miner by
// the job's coordinator, settlement against the miner's signed receipt (the
// miner is paid its price for the tokens produced, a protocol fee is burned,
// the rest of the escrow is refunded), and a full refund when the job's TTL
// passes unsettled. A job settles at most once.
//
// Customers that cannot sign each job (API-key clients of the coordinator's
// OpenAI-compatible API) prepay a deposit with a coordinator; the
// coordinator then creates their jobs against it.
package jobs

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/miners"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// IDLen is the length of a job id.
const IDLen = 16

// Message types.
const (
	TypeCreate    = "jobs/create"
	TypeCreateFor = "jobs/create_for"
	TypeAssign    = "jobs/assign"
	TypeSettle    = "jobs/settle"
	TypeCancel    = "jobs/cancel"
	TypeDeposit   = "jobs/deposit"
	TypeWithdraw  = "jobs/withdraw"
)

// Errors of the "jobs" codespace.
var (
	ErrInvalidJob      = errs.Register("jobs", 2, "invalid_job", "invalid job")
	ErrJobExists       = errs.Register("jobs", 3, "job_exists", "job id already used")
	ErrJobNotFound     = errs.Register("jobs", 4, "job_not_found", "job not found")
	ErrNotCoordinator  = errs.Register("jobs", 5, "not_job_coordinator", "signer is not the job's coordinator")
	ErrJobState        = errs.Register("jobs", 6, "job_wrong_state", "job is not in a state that allows this")
	ErrMinerIneligible = errs.Register("jobs", 7, "miner_ineligible", "miner cannot take this job")
	ErrReceiptInvalid  = errs.Register("jobs", 8, "receipt_invalid", "receipt rejected")
	ErrDepositLow      = errs.Register("jobs", 9, "insufficient_deposit", "deposit does not cover the job")
	ErrTTL             = errs.Register("jobs", 10, "invalid_ttl", "TTL out of range")
	ErrNotCustomer     = errs.Register("jobs", 11, "not_job_customer", "signer is not the job's customer")
)

// Job status.
const (
	StatusOpen     uint8 = 1 // escrowed, not assigned
	StatusAssigned uint8 = 2
	StatusSettled  uint8 = 3
	StatusExpired  uint8 = 4 // refunded after the TTL
	StatusCanceled uint8 = 5 // refunded by the customer before assignment
)

// StatusName names a status for APIs.
func StatusName(s uint8) string {
	switch s {
	case StatusOpen:
		return "open"
	case StatusAssigned:
		return "assigned"
	case StatusSettled:
		return "settled"
	case StatusExpired:
		return "expired"
	case StatusCanceled:
		return "canceled"
	}
	return "unknown"
}

// Params of the module.
type Params struct {
	FeeBps     uint64 `json:"fee_bps"`    // protocol fee on the miner's price, burned
	MinTTL     int64  `json:"min_ttl_s"`  // seconds
	MaxTTL     int64  `json:"max_ttl_s"`  // seconds
	MaxTokens  uint64 `json:"max_tokens"` // per job
	MaxModelID int    `json:"max_model_len"`
}

// DefaultParams: a 10% burned fee, TTL from 10 s to 1 day, 32k tokens.
func DefaultParams() Params {
	return Params{FeeBps: 1000, MinTTL: 10, MaxTTL: 86400, MaxTokens: 32768, MaxModelID: 128}
}

// Fee is the protocol fee on price.
func (p Params) Fee(price coin.Amount) coin.Amount { return price.MulDiv(p.FeeBps, 10_000) }

// Spec is what a customer asks for.
type Spec struct {
	_          struct{} `cbor:",toarray"`
	ID         []byte   // 16 random bytes chosen by the client
	Model      string
	PromptHash []byte // SHA-256 of the prompt
	MaxTokens  uint64
	MaxPrice   coin.Amount // locked in escrow: the most the customer pays, fee included
	TTLSeconds int64
}

// MsgCreate creates a job paid from the signer's balance.
type MsgCreate struct {
	_           struct{} `cbor:",toarray"`
	Spec        Spec
	Coordinator []byte // who may assign and settle it
}

// MsgCreateFor creates a job for Customer, paid from the customer's deposit
// with the signing coordinator.
type MsgCreateFor struct {
	_        struct{} `cbor:",toarray"`
	Spec     Spec
	Customer []byte
}

// MsgAssign (re)assigns a job to a miner; only the job's coordinator may.
type MsgAssign struct {
	_     struct{} `cbor:",toarray"`
	ID    []byte
	Miner []byte
}

// MsgSettle settles a job with its miner's receipt; the job's coordinator
// or its assigned miner may submit it.
type MsgSettle struct {
	_       struct{} `cbor:",toarray"`
	Receipt Receipt
}

// MsgCancel refunds an unassigned job to its customer.
type MsgCancel struct {
	_  struct{} `cbor:",toarray"`
	ID []byte
}

// MsgDeposit moves funds from the signer's balance into a deposit with a
// coordinator; MsgWithdraw moves them back.
type MsgDeposit struct {
	_           struct{} `cbor:",toarray"`
	Coordinator []byte
	Amount      coin.Amount
}

// MsgWithdraw takes funds back from a deposit.
type MsgWithdraw MsgDeposit

// Job is the on-chain record of a job.
type Job struct {
	_           struct{} `cbor:",toarray"`
	ID          []byte
	Customer    []byte
	Coordinator []byte
	Model       string
	PromptHash  []byte
	MaxTokens   uint64
	Escrow      coin.Amount
	FromDeposit bool
	Created     int64 // height
	Expires     int64 // block time, unix seconds
	Status      uint8
	Miner       []byte
	PricePer1k  coin.Amount // the assigned miner's price, fixed at assignment
	Assignments uint32
	Paid        coin.Amount // to the miner
	Fee         coin.Amount // burned
	Refund      coin.Amount // back to the customer
	ReceiptHash []byte
	Settled     int64 // height
}

// Bank is what the module needs of the bank.
type Bank interface {
	Sub(kv *state.Cache, a address.Address, amount coin.Amount) error
	Add(kv *state.Cache, a address.Address, amount coin.Amount) error
	Burn(kv *state.Cache, amount coin.Amount) error
}

// Miners is what the module needs of the miner registry.
type Miners interface {
	Get(r state.Reader, a address.Address) (*miners.Miner, error)
	RecordSettlement(kv *state.Cache, a address.Address, tokensOut uint64) error
}

// Keeper implements the module.
type Keeper struct {
	Bank   Bank
	Miners Miners
}

var (
	_ module.Module     = Keeper{}
	_ module.EndBlocker = Keeper{}
	_ module.Genesis    = Keeper{}
)

var (
	keyParams      = []byte("jobs/params")
	keyExpiredUpTo = []byte("jobs/e/last")
)

// KeyPrefix is where job records live, for queries over committed state.
var KeyPrefix = []byte("jobs/j/")

func keyJob(id []byte) []byte { return append([]byte("jobs/j/"), id...) }

// KeyJob is the state key of a job, for queries.
func KeyJob(id []byte) []byte { return keyJob(id) }

func keyExpiry(sec int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("jobs/e/t/"), uint64(sec))
}

func keyDeposit(customer, coordinator address.Address) []byte {
	k := append([]byte("jobs/d/"), customer[:]...)
	return append(k, coordinator[:]...)
}

// KeyDeposit is the state key of a deposit, for queries.
func KeyDeposit(customer, coordinator address.Address) []byte {
	return keyDeposit(customer, coordinator)
}

func keyReceipt(h [32]byte) []byte { return append([]byte("jobs/r/"), h[:]...) }

// KeyReceipt is the state key anchoring a settled receipt's hash.
func KeyReceipt(h [32]byte) []byte { return keyReceipt(h) }

// Name implements module.Module.
func (Keeper) Name() string { return "jobs" }

// InitGenesis implements module.Genesis.
func (Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	p := DefaultParams()
	if raw != nil {
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("jobs: genesis: %w", err)
		}
	}
	if p.FeeBps > 10_000 || p.MinTTL < 1 || p.MaxTTL < p.MinTTL || p.MaxTokens < 1 {
		return fmt.Errorf("jobs: invalid genesis parameters %+v", p)
	}
	b, err := tx.Marshal(p)
	if err != nil {
		return err
	}
	ctx.KV.Set(keyParams, b)
	return nil
}

// Params reads the parameters.
func (Keeper) Params(r state.Reader) (Params, error) {
	b, err := r.Get(keyParams)
	if err != nil || b == nil {
		return DefaultParams(), err
	}
	var p Params
	return p, tx.Unmarshal(b, &p)
}

// Get returns the job with id, or nil.
func (Keeper) Get(r state.Reader, id []byte) (*Job, error) {
	b, err := r.Get(keyJob(id))
	if err != nil || b == nil {
		return nil, err
	}
	return DecodeJob(b)
}

// DecodeJob decodes a job record.
func DecodeJob(b []byte) (*Job, error) {
	var j Job
	if err := tx.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("jobs: corrupt job record: %w", err)
	}
	return &j, nil
}

// Deposit returns a customer's deposit with a coordinator.
func (Keeper) Deposit(r state.Reader, customer, coordinator address.Address) (coin.Amount, error) {
	v, err := getInt(r, keyDeposit(customer, coordinator))
	return coin.Amount(v), err
}

func (Keeper) put(kv *state.Cache, j *Job) error {
	b, err := tx.Marshal(j)
	if err != nil {
		return err
	}
	kv.Set(keyJob(j.ID), b)
	return nil
}

// Exec implements module.Module.
func (k Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	switch msg.Type {
	case TypeCreate:
		var m MsgCreate
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		coord, err := address.FromBytes(m.Coordinator)
		if err != nil {
			return fmt.Errorf("%w: coordinator: %v", ErrInvalidJob, err)
		}
		return k.create(ctx, p, m.Spec, ctx.Signer, coord, false)
	case TypeCreateFor:
		var m MsgCreateFor
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		cust, err := address.FromBytes(m.Customer)
		if err != nil {
			return fmt.Errorf("%w: customer: %v", ErrInvalidJob, err)
		}
		return k.create(ctx, p, m.Spec, cust, ctx.Signer, true)
	case TypeAssign:
		var m MsgAssign
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.assign(ctx, p, m)
	case TypeSettle:
		var m MsgSettle
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.settle(ctx, p, &m.Receipt)
	case TypeCancel:
		var m MsgCancel
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.cancel(ctx, m.ID)
	case TypeDeposit, TypeWithdraw:
		var m MsgDeposit
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		coord, err := address.FromBytes(m.Coordinator)
		if err != nil {
			return fmt.Errorf("%w: coordinator: %v", ErrInvalidJob, err)
		}
		if m.Amount == 0 {
			return fmt.Errorf("%w: amount must be positive", ErrInvalidJob)
		}
		if msg.Type == TypeDeposit {
			if err := k.Bank.Sub(ctx.KV, ctx.Signer, m.Amount); err != nil {
				return err
			}
			return k.addDeposit(ctx.KV, ctx.Signer, coord, m.Amount)
		}
		if err := k.subDeposit(ctx.KV, ctx.Signer, coord, m.Amount); err != nil {
			return err
		}
		return k.Bank.Add(ctx.KV, ctx.Signer, m.Amount)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

func (k Keeper) addDeposit(kv *state.Cache, cust, coord address.Address, amt coin.Amount) error {
	cur, err := k.Deposit(kv, cust, coord)
	if err != nil {
		return err
	}
	sum, err := cur.Add(amt)
	if err != nil {
		return fmt.Errorf("%w: deposit overflow", ErrInvalidJob)
	}
	putInt(kv, keyDeposit(cust, coord), int64(sum))
	return nil
}

func (k Keeper) subDeposit(kv *state.Cache, cust, coord address.Address, amt coin.Amount) error {
	cur, err := k.Deposit(kv, cust, coord)
	if err != nil {
		return err
	}
	rest, ok := cur.Sub(amt)
	if !ok {
		return fmt.Errorf("%w: deposit of %s with %s is %s AITBC, needs %s", ErrDepositLow, cust, coord, cur, amt)
	}
	if rest == 0 {
		kv.Delete(keyDeposit(cust, coord))
	} else {
		putInt(kv, keyDeposit(cust, coord), int64(rest))
	}
	return nil
}

func (k Keeper) create(ctx *module.Context, p Params, s Spec, cust, coord address.Address, fromDeposit bool) error {
	switch {
	case len(s.ID) != IDLen:
		return fmt.Errorf("%w: id must be %d bytes", ErrInvalidJob, IDLen)
	case s.Model == "" || len(s.Model) > p.MaxModelID:
		return fmt.Errorf("%w: model name must be 1-%d bytes", ErrInvalidJob, p.MaxModelID)
	case len(s.PromptHash) != 32:
		return fmt.Errorf("%w: prompt hash must be 32 bytes", ErrInvalidJob)
	case s.MaxTokens == 0 || s.MaxTokens > p.MaxTokens:
		return fmt.Errorf("%w: max tokens must be 1-%d", ErrInvalidJob, p.MaxTokens)
	case s.MaxPrice == 0:
		return fmt.Errorf("%w: max price must be positive", ErrInvalidJob)
	case s.TTLSeconds < p.MinTTL || s.TTLSeconds > p.MaxTTL:
		return fmt.Errorf("%w: %d s, allowed %d-%d", ErrTTL, s.TTLSeconds, p.MinTTL, p.MaxTTL)
	}
	if existing, err := k.Get(ctx.KV, s.ID); err != nil {
		return err
	} else if existing != nil {
		return fmt.Errorf("%w: %x", ErrJobExists, s.ID)
	}
	if fromDeposit {
		if err := k.subDeposit(ctx.KV, cust, coord, s.MaxPrice); err != nil {
			return err
		}
	} else if err := k.Bank.Sub(ctx.KV, cust, s.MaxPrice); err != nil {
		return err
	}
	j := &Job{
		ID: s.ID, Customer: cust[:], Coordinator: coord[:], Model: s.Model, PromptHash: s.PromptHash,
		MaxTokens: s.MaxTokens, Escrow: s.MaxPrice, FromDeposit: fromDeposit, Created: ctx.Height,
		Expires: ctx.Time.Unix() + s.TTLSeconds, Status: StatusOpen,
	}
	if err := k.put(ctx.KV, j); err != nil {
		return err
	}
	ctx.Touch(cust)
	ctx.Touch(coord)
	return appendID(ctx.KV, keyExpiry(j.Expires), j.ID)
}

func (k Keeper) job(ctx *module.Context, id []byte) (*Job, error) {
	if len(id) != IDLen {
		return nil, fmt.Errorf("%w: id must be %d bytes", ErrInvalidJob, IDLen)
	}
	j, err := k.Get(ctx.KV, id)
	if err != nil {
		return nil, err
	}
	if j == nil {
		return nil, fmt.Errorf("%w: %x", ErrJobNotFound, id)
	}
	return j, nil
}

func (k Keeper) assign(ctx *module.Context, p Params, m MsgAssign) error {
	j, err := k.job(ctx, m.ID)
	if err != nil {
		return err
	}
	if string(j.Coordinator) != string(ctx.Signer[:]) {
		return fmt.Errorf("%w: %x", ErrNotCoordinator, j.ID)
	}
	if j.Status != StatusOpen && j.Status != StatusAssigned {
		return fmt.Errorf("%w: %x is %s", ErrJobState, j.ID, StatusName(j.Status))
	}
	if ctx.Time.Unix() >= j.Expires {
		return fmt.Errorf("%w: %x has expired", ErrJobState, j.ID)
	}
	ma, err := address.FromBytes(m.Miner)
	if err != nil {
		return fmt.Errorf("%w: miner address: %v", ErrMinerIneligible, err)
	}
	mi, err := k.Miners.Get(ctx.KV, ma)
	if err != nil {
		return err
	}
	switch {
	case mi == nil:
		return fmt.Errorf("%w: %s is not registered", ErrMinerIneligible, ma)
	case mi.Status != miners.StatusActive:
		return fmt.Errorf("%w: %s is unbonding", ErrMinerIneligible, ma)
	case !mi.Caps.Serves(j.Model):
		return fmt.Errorf("%w: %s does not serve %q", ErrMinerIneligible, ma, j.Model)
	}
	// The escrow must be able to pay the miner for at least one token's
	// worth of its price plus fee; otherwise the job can never settle.
	if minCost := PriceFor(1, mi.Caps.PricePer1k); minCost+p.Fee(minCost) > j.Escrow {
		return fmt.Errorf("%w: %s charges %s per 1k tokens, escrow is %s", ErrMinerIneligible, ma, mi.Caps.PricePer1k, j.Escrow)
	}
	j.Status, j.Miner, j.PricePer1k = StatusAssigned, ma[:], mi.Caps.PricePer1k
	j.Assignments++
	ctx.Touch(ma)
	return k.put(ctx.KV, j)
}

// Settlement is how a settled job's escrow was split.
type Settlement struct {
	Price, Fee, Refund coin.Amount
}

// Split computes the settlement of escrow for a price: the miner gets the
// price and the fee is burned, capped so that price+fee never exceeds the
// escrow; the rest is refunded.
func Split(p Params, escrow, price coin.Amount) Settlement {
	fee := p.Fee(price)
	if total, err := price.Add(fee); err != nil || total > escrow {
		price = escrow.MulDiv(10_000, 10_000+p.FeeBps)
		fee = escrow - price
	}
	return Settlement{Price: price, Fee: fee, Refund: escrow - price - fee}
}

func (k Keeper) settle(ctx *module.Context, p Params, r *Receipt) error {
	if err := r.CheckShape(); err != nil {
		return fmt.Errorf("%w: %v", ErrReceiptInvalid, err)
	}
	j, err := k.job(ctx, r.JobID)
	if err != nil {
		return err
	}
	signer := string(ctx.Signer[:])
	if signer != string(j.Coordinator) && signer != string(j.Miner) {
		return fmt.Errorf("%w: %x", ErrNotCoordinator, j.ID)
	}
	if j.Status != StatusAssigned {
		return fmt.Errorf("%w: %x is %s", ErrJobState, j.ID, StatusName(j.Status))
	}
	mismatch := func(what string) error {
		return fmt.Errorf("%w: %s does not match job %x", ErrReceiptInvalid, what, j.ID)
	}
	switch {
	case r.ChainID != ctx.ChainID:
		return mismatch("chain id")
	case string(r.Miner) != string(j.Miner):
		return mismatch("miner (not the assigned one)")
	case string(r.Customer) != string(j.Customer):
		return mismatch("customer")
	case r.Model != j.Model:
		return mismatch("model")
	case string(r.PromptHash) != string(j.PromptHash):
		return mismatch("prompt hash")
	case r.TokensOut > j.MaxTokens:
		return fmt.Errorf("%w: %d tokens out, job allows %d", ErrReceiptInvalid, r.TokensOut, j.MaxTokens)
	case r.Price != PriceFor(r.TokensOut, j.PricePer1k):
		return fmt.Errorf("%w: price %s, %d tokens at %s per 1k is %s", ErrReceiptInvalid, r.Price, r.TokensOut, j.PricePer1k, PriceFor(r.TokensOut, j.PricePer1k))
	}
	mi, err := k.Miners.Get(ctx.KV, j.MinerAddr())
	if err != nil {
		return err
	}
	if mi == nil {
		return fmt.Errorf("%w: miner %s left the registry", ErrReceiptInvalid, j.MinerAddr())
	}
	if err := r.Verify(ed25519.PublicKey(mi.PubKey)); err != nil {
		return fmt.Errorf("%w: %v", ErrReceiptInvalid, err)
	}
	h, err := r.Hash()
	if err != nil {
		return err
	}
	s := Split(p, j.Escrow, r.Price)
	if err := k.Bank.Add(ctx.KV, j.MinerAddr(), s.Price); err != nil {
		return err
	}
	if err := k.Bank.Burn(ctx.KV, s.Fee); err != nil {
		return err
	}
	if err := k.refund(ctx.KV, j, s.Refund); err != nil {
		return err
	}
	if err := k.Miners.RecordSettlement(ctx.KV, j.MinerAddr(), r.TokensOut); err != nil {
		return err
	}
	j.Status, j.Paid, j.Fee, j.Refund, j.ReceiptHash, j.Settled = StatusSettled, s.Price, s.Fee, s.Refund, h[:], ctx.Height
	ctx.KV.Set(keyReceipt(h), j.ID)
	ctx.Touch(j.MinerAddr())
	ctx.Touch(j.CustomerAddr())
	return k.put(ctx.KV, j)
}

func (k Keeper) refund(kv *state.Cache, j *Job, amt coin.Amount) error {
	if amt == 0 {
		return nil
	}
	if j.FromDeposit {
		return k.addDeposit(kv, j.CustomerAddr(), j.CoordinatorAddr(), amt)
	}
	return k.Bank.Add(kv, j.CustomerAddr(), amt)
}

func (k Keeper) cancel(ctx *module.Context, id []byte) error {
	j, err := k.job(ctx, id)
	if err != nil {
		return err
	}
	if string(j.Customer) != string(ctx.Signer[:]) && string(j.Coordinator) != string(ctx.Signer[:]) {
		return fmt.Errorf("%w: %x", ErrNotCustomer, j.ID)
	}
	if j.Status != StatusOpen {
		return fmt.Errorf("%w: %x is %s; only an unassigned job can be canceled", ErrJobState, j.ID, StatusName(j.Status))
	}
	if err := k.refund(ctx.KV, j, j.Escrow); err != nil {
		return err
	}
	j.Status, j.Refund, j.Settled = StatusCanceled, j.Escrow, ctx.Height
	return k.put(ctx.KV, j)
}

// maxExpirySweep bounds how many seconds one block sweeps, so a block
// after a long halt stays cheap; the rest is swept by the next blocks.
const maxExpirySweep = 3600

// EndBlock refunds, in full, every job whose TTL passed unsettled.
func (k Keeper) EndBlock(ctx *module.Context) error {
	last, err := getInt(ctx.KV, keyExpiredUpTo)
	if err != nil {
		return err
	}
	now := ctx.Time.Unix()
	if last == 0 {
		// First block: no job can have expired before it. (The genesis
		// time may lie long before the first block.)
		last = now - 1
	}
	end := min(now, last+maxExpirySweep)
	for sec := last + 1; sec <= end; sec++ {
		key := keyExpiry(sec)
		ids, err := readIDs(ctx.KV, key)
		if err != nil {
			return err
		}
		for _, id := range ids {
			j, err := k.Get(ctx.KV, id)
			if err != nil {
				return err
			}
			if j == nil || (j.Status != StatusOpen && j.Status != StatusAssigned) {
				continue
			}
			if err := k.refund(ctx.KV, j, j.Escrow); err != nil {
				return err
			}
			j.Status, j.Refund, j.Settled = StatusExpired, j.Escrow, ctx.Height
			if err := k.put(ctx.KV, j); err != nil {
				return err
			}
		}
		if ids != nil {
			ctx.KV.Delete(key)
		}
	}
	if end > last {
		putInt(ctx.KV, keyExpiredUpTo, end)
	}
	return nil
}

// CustomerAddr, CoordinatorAddr and MinerAddr decode the job's addresses.
func (j *Job) CustomerAddr() address.Address { a, _ := address.FromBytes(j.Customer); return a }

// CoordinatorAddr is the job's coordinator.
func (j *Job) CoordinatorAddr() address.Address { a, _ := address.FromBytes(j.Coordinator); return a }

// MinerAddr is the assigned miner (zero when unassigned).
func (j *Job) MinerAddr() address.Address { a, _ := address.FromBytes(j.Miner); return a }

// ExpiresAt is the job's deadline.
func (j *Job) ExpiresAt() time.Time { return time.Unix(j.Expires, 0).UTC() }

func getInt(r state.Reader, key []byte) (int64, error) {
	v, err := r.Get(key)
	if err != nil || len(v) == 0 {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("jobs: corrupt value under %q", key)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func putInt(kv *state.Cache, key []byte, v int64) {
	kv.Set(key, binary.BigEndian.AppendUint64(nil, uint64(v)))
}

func readIDs(r state.Reader, key []byte) ([][]byte, error) {
	b, err := r.Get(key)
	if err != nil || b == nil {
		return nil, err
	}
	var ids [][]byte
	return ids, tx.Unmarshal(b, &ids)
}

func appendID(kv *state.Cache, key, id []byte) error {
	ids, err := readIDs(kv, key)
	if err != nil {
		return err
	}
	b, err := tx.Marshal(append(ids, id))
	if err != nil {
		return err
	}
	kv.Set(key, b)
	return nil
}
