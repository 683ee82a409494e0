// Package jobs is the chain module of paid AI jobs: escrow when a job is
// created (the customer's maximum price moves into the module account
// "jobs.escrow"), assignment to a miner by the job's coordinator,
// settlement against the miner's signed receipt (the miner is paid its
// price for the tokens produced, a protocol fee goes to the block's fee
// split (burn, treasury, proposer), the coordinator gets its commission,
// the rest of the escrow is refunded), and a full refund when the job's TTL passes
// unsettled. A job settles at most once.
//
// Customers that cannot sign each job (API-key clients of the coordinator's
// OpenAI-compatible API) prepay a deposit with a coordinator, held in the
// module account "jobs.deposits"; the coordinator then creates their jobs
// against it.
//
// Money leaves a coordinator's reach only after the release delay: a
// customer's withdrawal from a deposit, and a customer's cancellation of
// an unassigned job, are announced on chain and take effect release_delay
// seconds later (an assignment in between voids the cancellation, and jobs
// created from the deposit meanwhile are paid from it first). So a
// coordinator that has seen the money committed may run the job and
// release its output at once, without waiting a block for its own
// transactions (docs/ECONOMICS.md, "Pay before you get").
//
// Invariants: the escrow account holds the escrow of every open or
// assigned job; the deposits account holds every deposit; every finished
// job's escrow was paid out exactly.
package jobs

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "jobs"

// Module accounts.
const (
	EscrowAccount   = "jobs.escrow"
	DepositsAccount = "jobs.deposits"
)

// Job status.
const (
	StatusOpen     uint8 = 1 // escrowed, not assigned
	StatusAssigned uint8 = 2
	StatusSettled  uint8 = 3
	StatusExpired  uint8 = 4 // refunded after the TTL
	StatusCanceled uint8 = 5 // refunded before assignment
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
	FeeBps     uint64 `json:"fee_bps"`    // protocol fee on the miner's price, split like transaction fees
	MinTTL     int64  `json:"min_ttl_s"`  // seconds
	MaxTTL     int64  `json:"max_ttl_s"`  // seconds
	MaxTokens  uint64 `json:"max_tokens"` // per job
	MaxModelID int    `json:"max_model_len"`
	// ReleaseDelay is how long after a customer announces a withdrawal
	// from a deposit, or the cancellation of an open job, the money is
	// released (seconds; 0 releases at once, which only tests should use).
	ReleaseDelay int64 `json:"release_delay_s"`
	// The coordinator's commission on each job it settles:
	// CommissionMin + price × CommissionBps / 10000, paid from the escrow
	// to the job's coordinator, so that routing a job (three transactions,
	// or a share of three batches) never costs the coordinator more than
	// it earns, however small the job.
	CommissionBps uint64      `json:"commission_bps"`
	CommissionMin coin.Amount `json:"commission_min"`
}

// DefaultParams: a 10% protocol fee, a coordinator's commission of
// 0.003 AITBC (three minimum transaction fees) plus 5%, TTL from 10 s to
// 1 day, 32k tokens, money released 10 minutes after a customer asks for
// it back.
func DefaultParams() Params {
	return Params{FeeBps: 1000, MinTTL: 10, MaxTTL: 86400, MaxTokens: 32768, MaxModelID: 128, ReleaseDelay: 600,
		CommissionBps: 500, CommissionMin: 3 * coin.Unit / 1000}
}

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.FeeBps > 10_000 || p.CommissionBps > 10_000 || p.MinTTL < 1 || p.MaxTTL < p.MinTTL || p.MaxTokens < 1 || p.MaxModelID < 1 || p.ReleaseDelay < 0 {
		return fmt.Errorf("jobs: invalid parameters %+v", p)
	}
	return nil
}

// Fee is the protocol fee on price.
func (p Params) Fee(price coin.Amount) coin.Amount { return price.MulDiv(p.FeeBps, 10_000) }

// Commission is the coordinator's commission on a job of price.
func (p Params) Commission(price coin.Amount) coin.Amount {
	return p.CommissionMin + price.MulDiv(p.CommissionBps, 10_000)
}

// MaxCost is what a customer pays at most for a job of price: the price,
// the protocol fee and the coordinator's commission. An escrow of at least
// this settles the job without capping the miner's price.
func (p Params) MaxCost(price coin.Amount) coin.Amount {
	return price + p.Fee(price) + p.Commission(price)
}

// ReleaseDelayDuration is ReleaseDelay as a duration.
func (p Params) ReleaseDelayDuration() time.Duration {
	return time.Duration(p.ReleaseDelay) * time.Second
}

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
	Fee         coin.Amount // protocol fee, to the block's fee split
	Refund      coin.Amount // back to the customer
	ReceiptHash []byte
	Settled     int64       // height
	CancelAt    int64       // block time (unix s) a customer's cancellation takes effect; 0: none pending
	Commission  coin.Amount // to the coordinator
}

// CustomerAddr is the job's customer.
func (j *Job) CustomerAddr() address.Address { a, _ := address.FromBytes(j.Customer); return a }

// CoordinatorAddr is the job's coordinator.
func (j *Job) CoordinatorAddr() address.Address { a, _ := address.FromBytes(j.Coordinator); return a }

// MinerAddr is the assigned miner (zero when unassigned).
func (j *Job) MinerAddr() address.Address { a, _ := address.FromBytes(j.Miner); return a }

// ExpiresAt is the job's deadline.
func (j *Job) ExpiresAt() time.Time { return time.Unix(j.Expires, 0).UTC() }

// Active reports whether the job's escrow is still held.
func (j *Job) Active() bool { return j.Status == StatusOpen || j.Status == StatusAssigned }

// Deposit is a customer's prepaid balance with one coordinator.
type Deposit struct {
	_      struct{}    `cbor:",toarray"`
	Amount coin.Amount // held in the deposits account; the coordinator's create_for draws on all of it
	// Withdrawing is what the customer announced it takes back at
	// WithdrawAt (block time, unix s); at that time it gets
	// min(Withdrawing, Amount).
	Withdrawing coin.Amount
	WithdrawAt  int64
}

// Spendable is what a coordinator may still reserve for new jobs: the
// deposit less what is announced for withdrawal.
func (d Deposit) Spendable() coin.Amount {
	s, _ := d.Amount.Sub(d.Withdrawing)
	return s
}

// Bank is what the module needs of the bank.
type Bank interface {
	Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error
	CollectFee(kv *state.Cache, from address.Address, amount coin.Amount) error
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
}

// Miners is what the module needs of the miner registry.
type Miners interface {
	Get(r state.Reader, a address.Address) (*miners.Miner, error)
	RecordSettlement(kv *state.Cache, a address.Address, tokensOut uint64) error
}

// Earnings learns of every settlement: the rewards module counts the
// miner's work for the epoch's rewards, and says where its pay goes (its
// pool's account, or the miner itself).
type Earnings interface {
	Settled(ctx *module.Context, miner address.Address, tokensOut uint64, price, fee coin.Amount) (payTo address.Address, err error)
}

// Bindings is what the module needs of the marketplace: a job bound to a
// marketplace agreement is paid by the agreement (the market module pays
// its provider when it sees the job settled), so its escrow pays no miner
// and no protocol fee, and it may run only on a miner that works for the
// agreement's provider.
type Bindings interface {
	// MayRun refuses assigning a bound job to a miner that does not
	// serve its agreement's provider (nil for an unbound job).
	MayRun(r state.Reader, job []byte, miner address.Address) error
	// Settling reports whether a job about to settle is bound, and
	// records what the agreement needs to pay for it.
	Settling(kv *state.Cache, job []byte, tokensOut uint64) (bound bool, err error)
}

// Keeper implements the module.
type Keeper struct {
	bank             Bank
	miners           Miners
	bindings         Bindings // nil: no marketplace, no job is bound
	earnings         Earnings
	audits           Audits // nil: no spot checks (audits.go)
	escrow, deposits address.Address
	receipts         *tx.Verifier // expanded miner keys, for batches of receipts
	spanAgents       SpanAgents   // split jobs' span servers (stages.go)

	private privateVerifiers // parsed verifying keys of private jobs (private.go)
}

// SetBindings connects the marketplace (modules.New does, once).
func (k *Keeper) SetBindings(b Bindings) { k.bindings = b }

// SetEarnings connects the rewards module (modules.New does, once).
func (k *Keeper) SetEarnings(e Earnings) { k.earnings = e }

// NewKeeper returns the module over the bank and the miner registry.
func NewKeeper(bank Bank, m Miners) *Keeper {
	return &Keeper{bank: bank, miners: m, escrow: address.Module(EscrowAccount), deposits: address.Module(DepositsAccount),
		receipts: tx.NewVerifier(1000)}
}

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.EndBlocker = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Accounts   = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Accounts implements module.Accounts.
func (*Keeper) Accounts() []string { return []string{EscrowAccount, DepositsAccount} }

var keyParams = []byte("jobs/params")

// Key prefixes of the module's records.
var (
	JobPrefix     = []byte("jobs/j/")
	DepositPrefix = []byte("jobs/d/")
)

func keyJob(id []byte) []byte { return append(JobPrefix[:len(JobPrefix):len(JobPrefix)], id...) }

func keyDeposit(customer, coordinator address.Address) []byte {
	k := append(DepositPrefix[:len(DepositPrefix):len(DepositPrefix)], customer[:]...)
	return append(k, coordinator[:]...)
}

func keyReceipt(h [32]byte) []byte { return append([]byte("jobs/r/"), h[:]...) }

// Params reads the parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, DefaultParams())
}

// Get returns the job with id, or nil.
func (*Keeper) Get(r state.Reader, id []byte) (*Job, error) {
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

func (*Keeper) put(kv *state.Cache, j *Job) error {
	b, err := tx.Marshal(j)
	if err != nil {
		return err
	}
	kv.Set(keyJob(j.ID), b)
	return nil
}

// Deposit returns a customer's deposit with a coordinator.
func (*Keeper) Deposit(r state.Reader, customer, coordinator address.Address) (Deposit, error) {
	var d Deposit
	b, err := r.Get(keyDeposit(customer, coordinator))
	if err != nil || b == nil {
		return d, err
	}
	if err := tx.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("jobs: corrupt deposit of %s with %s: %w", customer, coordinator, err)
	}
	return d, nil
}

func (*Keeper) putDeposit(kv *state.Cache, customer, coordinator address.Address, d Deposit) error {
	key := keyDeposit(customer, coordinator)
	if d.Amount == 0 && d.Withdrawing == 0 {
		kv.Delete(key)
		return nil
	}
	b, err := tx.Marshal(d)
	if err != nil {
		return err
	}
	kv.Set(key, b)
	return nil
}

// addDeposit credits amt, already in the deposits account, to a deposit.
func (k *Keeper) addDeposit(kv *state.Cache, cust, coord address.Address, amt coin.Amount) error {
	d, err := k.Deposit(kv, cust, coord)
	if err != nil {
		return err
	}
	if d.Amount, err = d.Amount.Add(amt); err != nil {
		return fmt.Errorf("%w: deposit overflow", ErrInvalidJob)
	}
	return k.putDeposit(kv, cust, coord, d)
}

// ChargeDeposit pays coord amt of cust's deposit with it: what cust owes
// the coordinator for a transaction it signed on cust's behalf (the
// market's listing fee of a market/create_for). It fails, changing
// nothing, when the deposit holds less.
func (k *Keeper) ChargeDeposit(kv *state.Cache, cust, coord address.Address, amt coin.Amount) error {
	if err := k.takeDeposit(kv, cust, coord, amt); err != nil {
		return err
	}
	return k.bank.Send(kv, k.deposits, coord, amt)
}

// takeDeposit debits amt from a deposit (the caller moves it out of the
// deposits account).
func (k *Keeper) takeDeposit(kv *state.Cache, cust, coord address.Address, amt coin.Amount) error {
	d, err := k.Deposit(kv, cust, coord)
	if err != nil {
		return err
	}
	rest, ok := d.Amount.Sub(amt)
	if !ok {
		return fmt.Errorf("%w: deposit of %s with %s is %s AITBC, needs %s", ErrDepositLow, cust, coord, d.Amount, amt)
	}
	d.Amount = rest
	return k.putDeposit(kv, cust, coord, d)
}

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
