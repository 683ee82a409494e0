// Package audits is the chain module of spot checks: a fraction
// (spot_check_bps) of the settled jobs whose receipts carry an attestation
// (jobs.Receipt.AttestHash) is re-checked by a bonded verifier, drawn with
// the job from the hash of the block that settled it, which nobody who sent
// the settlement could know. While a job may be checked its miner's pay
// sits in the module account "audits.held"; jobs that are not drawn are
// paid in the same block's end, so a chain with spot checks off
// (spot_check_bps 0, the default) behaves exactly as one without the
// module.
//
// A verifier registers with a bond (audits/register_verifier, held in
// "audits.bonds") and reports each check it is assigned (audits/report):
// pass releases the pay, less the check fee it earns; fail opens a
// dispute: the miner's stake is frozen and a second verifier, drawn from
// the hash of the block that carried the claim, re-checks. If it agrees,
// the fraud is confirmed: the customer gets the pay back, the miner's
// stake is slashed (slash_bps) and split between the customer, the two
// verifiers and the burn. If it disagrees, the first verifier's bond is
// slashed (bond_slash_bps, burned) and the pay released: a claim is
// itself checked before anyone is slashed on it. A verifier that does not
// report within check_window_blocks loses timeout_slash_bps of its bond
// and the pay is released: the miner is never held hostage.
//
// Invariants: audits.held holds the pay of every check still open;
// audits.bonds holds every verifier's bond. docs/VERIFICATION.md and
// docs/ECONOMICS.md ("Spot checks") describe the flows and figures.
package audits

import (
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "audits"

// Module accounts.
const (
	HeldAccount  = "audits.held"  // miners' pay for jobs that are or may be checked
	BondsAccount = "audits.bonds" // verifiers' bonds
)

// Check status.
const (
	StatusPending    uint8 = 1 // settled this block; drawn or released at its end
	StatusAssigned   uint8 = 2 // drawn: its verifier has check_window_blocks to report
	StatusDisputed   uint8 = 3 // the verifier reported fail; a second one is drawn at the block's end
	StatusRechecking uint8 = 4 // the second verifier has check_window_blocks to report
	StatusPassed     uint8 = 5 // the verifier reported pass: pay released
	StatusConfirmed  uint8 = 6 // both verifiers reported fail: fraud, miner slashed, customer refunded
	StatusOverruled  uint8 = 7 // the second verifier reported pass: the first's bond slashed, pay released
	StatusTimedOut   uint8 = 8 // a verifier did not report in time: its bond cut, pay released
	StatusUnchecked  uint8 = 9 // no eligible verifier: pay released unchecked
)

// StatusName names a status for APIs.
func StatusName(s uint8) string {
	switch s {
	case StatusPending:
		return "pending"
	case StatusAssigned:
		return "assigned"
	case StatusDisputed:
		return "disputed"
	case StatusRechecking:
		return "rechecking"
	case StatusPassed:
		return "passed"
	case StatusConfirmed:
		return "fraud_confirmed"
	case StatusOverruled:
		return "overruled"
	case StatusTimedOut:
		return "timed_out"
	case StatusUnchecked:
		return "unchecked"
	}
	return "unknown"
}

// held reports whether a check in status s still holds its pay.
func held(s uint8) bool { return s >= StatusPending && s <= StatusRechecking }

// Params of the module.
type Params struct {
	// SpotCheckBps is the share of settled, attested jobs checked, in
	// basis points. 0 (the default) checks none and holds no pay.
	SpotCheckBps uint64 `json:"spot_check_bps"`
	// MinBond is the least bond of a verifier that may be drawn.
	MinBond coin.Amount `json:"min_bond"`
	// CheckWindowBlocks is how long a drawn verifier has to report.
	CheckWindowBlocks int64 `json:"check_window_blocks"`
	// CheckFeeBps of a checked job's pay goes to each verifier whose
	// report the outcome upholds (at most 50%: two verifiers may earn it).
	CheckFeeBps uint64 `json:"check_fee_bps"`
	// SlashBps of a miner's stake is cut on a confirmed fraud; of the cut,
	// SlashCustomerBps goes to the customer, SlashVerifiersBps to the two
	// verifiers (half each), and the rest is burned.
	SlashBps          uint64 `json:"slash_bps"`
	SlashCustomerBps  uint64 `json:"slash_customer_bps"`
	SlashVerifiersBps uint64 `json:"slash_verifiers_bps"`
	// BondSlashBps of a verifier's bond is burned when a second verifier
	// overrules its fail; TimeoutSlashBps when it does not report in time.
	BondSlashBps    uint64 `json:"bond_slash_bps"`
	TimeoutSlashBps uint64 `json:"timeout_slash_bps"`
	// MaxVerifiers bounds the registry (every draw reads it).
	MaxVerifiers uint32 `json:"max_verifiers"`
	// AllowCheatMiners lets a miner built with -tags aitbc_cheat run its
	// cheating modes on this chain (devnets that test the checks); off by
	// default, and such a miner refuses to start on a chain without it.
	AllowCheatMiners bool `json:"allow_cheat_miners"`
}

// DefaultParams: no spot checks; when turned on, 100 AITBC bonds, 100
// blocks to report, a 10% check fee, 10% of a cheat's stake slashed (half
// to the customer, a fifth to the verifiers, the rest burned), half a
// dishonest verifier's bond and a tenth of a late one's burned.
func DefaultParams() Params {
	return Params{SpotCheckBps: 0, MinBond: 100 * coin.Unit, CheckWindowBlocks: 100, CheckFeeBps: 1000,
		SlashBps: 1000, SlashCustomerBps: 5000, SlashVerifiersBps: 2000, BondSlashBps: 5000, TimeoutSlashBps: 1000,
		MaxVerifiers: 1000}
}

// Validate checks the parameters.
func (p Params) Validate() error {
	switch {
	case p.SpotCheckBps > 10_000, p.CheckFeeBps > 5_000, p.SlashBps > 10_000, p.BondSlashBps > 10_000,
		p.TimeoutSlashBps > 10_000, p.SlashCustomerBps+p.SlashVerifiersBps > 10_000:
		return fmt.Errorf("%w: a share above its bound (spot_check_bps, slash shares <= 10000; check_fee_bps <= 5000)", ErrParams)
	case p.MinBond == 0 || p.CheckWindowBlocks < 1 || p.MaxVerifiers < 1 || p.MaxVerifiers > 100_000:
		return fmt.Errorf("%w: min_bond > 0, check_window_blocks >= 1, 1 <= max_verifiers <= 100000", ErrParams)
	}
	return nil
}

// Fee is the check fee on a job's held pay.
func (p Params) Fee(pay coin.Amount) coin.Amount { return pay.MulDiv(p.CheckFeeBps, 10_000) }

// Verifier is a registered verifier.
type Verifier struct {
	_     struct{} `cbor:",toarray"`
	Bond  coin.Amount
	Since int64 // height registered
	// Open counts the checks assigned to it and its fail claims still
	// under re-check: it may not leave while any is open.
	Open      uint32
	Reports   uint32 // reports it made
	Upheld    uint32 // reports the outcome upheld (pay earned)
	Overruled uint32 // fail claims a second verifier overruled
	TimedOut  uint32
	Earned    coin.Amount // check fees and shares of slashed stake
	Slashed   coin.Amount // burned from its bond
}

// Check is a spot check of one settled job.
type Check struct {
	_          struct{} `cbor:",toarray"`
	JobID      []byte
	Miner      []byte
	Customer   []byte
	PayTo      []byte      // where the miner's pay goes when released
	Amount     coin.Amount // the pay held (0 for a miner paid through a pool: its stake answers alone)
	AttestHash []byte
	Settled    int64 // height
	Status     uint8
	Verifier   []byte // the first verifier
	Deadline   int64  // last height at which the current verifier may report
	Evidence   []byte // the first verifier's evidence (SHA-256 of its recomputed commitments)
	Reason     string
	Second     []byte // the second verifier, after a fail
	Evidence2  []byte
	Reason2    string
	Resolved   int64 // height
	// What the outcome paid: check fees, the miner's stake cut and its
	// split, the customer's refund, what was burned.
	Fees      coin.Amount
	Slashed   coin.Amount
	Refunded  coin.Amount
	Shares    coin.Amount // of the slashed stake, to the verifiers
	Burned    coin.Amount
	BondSlash coin.Amount // cut from a verifier's bond
	// The job's work as the rewards module counts it (its tokens out and
	// protocol fee): withheld from the epoch's count while the check is
	// open, counted when the pay is released, never for a fraud.
	Tokens uint64
	JobFee coin.Amount
}

// MinerAddr is the checked job's miner.
func (c *Check) MinerAddr() address.Address { a, _ := address.FromBytes(c.Miner); return a }

// CustomerAddr is the checked job's customer.
func (c *Check) CustomerAddr() address.Address { a, _ := address.FromBytes(c.Customer); return a }

// PayToAddr is where the pay is released to.
func (c *Check) PayToAddr() address.Address { a, _ := address.FromBytes(c.PayTo); return a }

// VerifierAddr is the first verifier (zero before the draw).
func (c *Check) VerifierAddr() address.Address { a, _ := address.FromBytes(c.Verifier); return a }

// SecondAddr is the second verifier (zero before a dispute's draw).
func (c *Check) SecondAddr() address.Address { a, _ := address.FromBytes(c.Second); return a }

// Current is the verifier expected to report now, if any.
func (c *Check) Current() (address.Address, bool) {
	switch c.Status {
	case StatusAssigned:
		return c.VerifierAddr(), true
	case StatusRechecking:
		return c.SecondAddr(), true
	}
	return address.Address{}, false
}

// MinerRecord is a miner's record of spot checks.
type MinerRecord struct {
	_      struct{} `cbor:",toarray"`
	Drawn  uint32   // jobs drawn for a check
	Passed uint32   // checks passed (or overruled claims)
	Frauds uint32   // frauds confirmed
}

// Bank is what the module needs of the bank.
type Bank interface {
	Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error
	Burn(kv *state.Cache, from address.Address, amount coin.Amount) error
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
}

// Stake is what the module needs of the staking module.
type Stake interface {
	Freeze(kv *state.Cache, op address.Address) error
	Unfreeze(kv *state.Cache, op address.Address) error
	SlashTo(ctx *module.Context, op address.Address, bps uint64, to address.Address) (coin.Amount, error)
}

// Reputation learns of confirmed frauds (the market module counts one as
// a lost dispute of the miner's).
type Reputation interface {
	RecordFraud(kv *state.Cache, miner address.Address) error
}

// Work is what the module needs of the rewards module: a held job's work
// leaves the epoch's count at settlement (which has just counted it) and
// comes back when the pay is released, so that a confirmed fraud never
// earns a share of the epoch's miner rewards.
type Work interface {
	Withhold(kv *state.Cache, miner address.Address, tokens uint64, fee coin.Amount) error
	Credit(kv *state.Cache, miner address.Address, tokens uint64, fee coin.Amount) error
}

// JobParams reads the jobs module's parameters (its protocol fee).
type JobParams interface {
	Params(r state.Reader) (jobs.Params, error)
}

// Keeper implements the module.
type Keeper struct {
	bank        Bank
	stake       Stake
	rep         Reputation // nil: no reputation record
	work        Work       // nil: no rewards module to hold work from
	jobParams   JobParams
	held, bonds address.Address
}

// SetRewards connects the rewards module's work count and the jobs
// module's parameters (modules.New does, once).
func (k *Keeper) SetRewards(w Work, jp JobParams) { k.work, k.jobParams = w, jp }

// NewKeeper returns the module over the bank, the staking module and,
// when not nil, a reputation record.
func NewKeeper(b Bank, s Stake, rep Reputation) *Keeper {
	return &Keeper{bank: b, stake: s, rep: rep, held: address.Module(HeldAccount), bonds: address.Module(BondsAccount)}
}

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.EndBlocker = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Exporter   = (*Keeper)(nil)
	_ module.Accounts   = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Accounts implements module.Accounts.
func (*Keeper) Accounts() []string { return []string{HeldAccount, BondsAccount} }

// Key prefixes.
var (
	keyParams      = []byte("audits/params")
	VerifierPrefix = []byte("audits/v/")
	CheckPrefix    = []byte("audits/c/")
	drawPrefix     = []byte("audits/n/") // checks to draw for at this block's end
	duePrefix      = []byte("audits/t/") // deadline height, job id
	assignedPrefix = []byte("audits/a/") // verifier, job id: checks it must report
	minerPrefix    = []byte("audits/m/")
)

func cat(parts ...[]byte) []byte {
	var k []byte
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func keyVerifier(a address.Address) []byte { return cat(VerifierPrefix, a[:]) }
func keyCheck(id []byte) []byte            { return cat(CheckPrefix, id) }
func keyDraw(id []byte) []byte             { return cat(drawPrefix, id) }
func keyDue(h int64, id []byte) []byte {
	return cat(duePrefix, binary.BigEndian.AppendUint64(nil, uint64(h)), id)
}
func keyAssigned(v address.Address, id []byte) []byte { return cat(assignedPrefix, v[:], id) }
func keyMiner(a address.Address) []byte               { return cat(minerPrefix, a[:]) }

// Params reads the parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, DefaultParams())
}

func get[T any](r state.Reader, key []byte) (*T, error) {
	b, err := r.Get(key)
	if err != nil || b == nil {
		return nil, err
	}
	return decode[T](key, b)
}

func decode[T any](key, b []byte) (*T, error) {
	var v T
	if err := tx.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("audits: corrupt record %q: %w", key, err)
	}
	return &v, nil
}

func put(kv *state.Cache, key []byte, v any) error {
	b, err := tx.Marshal(v)
	if err != nil {
		return err
	}
	kv.Set(key, b)
	return nil
}

// Verifier returns a registered verifier, or nil.
func (*Keeper) Verifier(r state.Reader, a address.Address) (*Verifier, error) {
	return get[Verifier](r, keyVerifier(a))
}

// Check returns the check of a job, or nil (a job not drawn leaves none).
func (*Keeper) Check(r state.Reader, id []byte) (*Check, error) { return get[Check](r, keyCheck(id)) }

// Miner returns a miner's record of checks.
func (*Keeper) Miner(r state.Reader, a address.Address) (MinerRecord, error) {
	m, err := get[MinerRecord](r, keyMiner(a))
	if err != nil || m == nil {
		return MinerRecord{}, err
	}
	return *m, nil
}

func (k *Keeper) updateMiner(kv *state.Cache, a address.Address, fn func(m *MinerRecord)) error {
	m, err := k.Miner(kv, a)
	if err != nil {
		return err
	}
	fn(&m)
	return put(kv, keyMiner(a), m)
}

func (k *Keeper) updateVerifier(kv *state.Cache, a address.Address, fn func(v *Verifier)) error {
	v, err := k.Verifier(kv, a)
	if err != nil {
		return err
	}
	if v == nil {
		return fmt.Errorf("audits: verifier %s of an open check is not registered", a)
	}
	fn(v)
	return put(kv, keyVerifier(a), v)
}
