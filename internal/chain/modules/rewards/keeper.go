// Package rewards is the chain module of issuance: every block mints a
// reward (InitialReward, halved every HalvingBlocks) and shares it between
// the block's proposer, the miners (by verified work), the stakers and the
// treasury. The miners' and stakers' shares collect in the module account
// "rewards.pending" during an epoch and are paid out automatically at its
// last block: miners by the output tokens of the jobs they settled in the
// epoch (capped at the protocol fees those jobs paid, so an idle miner
// earns nothing and self-dealt work never profits), stakers through the
// staking module (by bonded stake, after each operator's commission). What
// nobody earns goes to the module account "treasury", which also receives
// its share of every block's fees (the application's fee split).
//
// The formulas are pure functions (formula.go) that the simulator in
// internal/economics runs too.
//
// Invariants: rewards.pending holds exactly the current epoch's two pots;
// the treasury holds exactly what was paid into it.
package rewards

import (
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "rewards"

// Module accounts.
const (
	PendingAccount  = "rewards.pending"
	TreasuryAccount = "treasury"
)

// Params of the module.
type Params struct {
	// InitialReward is minted by every block until the first halving.
	InitialReward coin.Amount `json:"initial_reward"`
	// HalvingBlocks: the block reward halves every this many blocks.
	HalvingBlocks int64 `json:"halving_blocks"`
	// EpochBlocks: miners' and stakers' rewards are paid every this many
	// blocks.
	EpochBlocks int64 `json:"epoch_blocks"`
	// Shares of each block's reward, in basis points; the treasury gets
	// the rest.
	ValidatorBps uint64 `json:"validator_bps"`
	MinerBps     uint64 `json:"miner_bps"`
	StakerBps    uint64 `json:"staker_bps"`
	// WorkCapBps caps a miner's epoch reward at this share of the
	// protocol fees its settled jobs paid in the epoch.
	WorkCapBps uint64 `json:"work_cap_bps"`
}

// DefaultParams: 3 AITBC per block, halving every 31,536,000 blocks (two
// years of 2 s blocks), paid every 60 blocks; 20% to the proposer, 40% to
// miners, 30% to stakers, 10% to the treasury; a miner's reward at most
// the protocol fees it paid.
func DefaultParams() Params {
	return Params{InitialReward: 3 * coin.Unit, HalvingBlocks: 31_536_000, EpochBlocks: 60,
		ValidatorBps: 2000, MinerBps: 4000, StakerBps: 3000, WorkCapBps: 10_000}
}

// Validate checks the parameters.
func (p Params) Validate() error {
	switch {
	case p.HalvingBlocks < 1:
		return fmt.Errorf("%w: halving_blocks must be at least 1", ErrParams)
	case p.EpochBlocks < 1:
		return fmt.Errorf("%w: epoch_blocks must be at least 1", ErrParams)
	case p.ValidatorBps+p.MinerBps+p.StakerBps > 10_000 || p.ValidatorBps > 10_000 || p.MinerBps > 10_000 || p.StakerBps > 10_000:
		return fmt.Errorf("%w: validator_bps + miner_bps + staker_bps exceed 10000", ErrParams)
	}
	return nil
}

// Epoch is the current epoch's pots, held in rewards.pending.
type Epoch struct {
	_         struct{} `cbor:",toarray"`
	MinerPot  coin.Amount
	StakerPot coin.Amount
}

// Totals are what the module has issued and paid since genesis.
type Totals struct {
	_          struct{}    `cbor:",toarray"`
	Issued     coin.Amount // every block reward minted
	Validators coin.Amount // to proposers
	Miners     coin.Amount // to miners (or their pools) for work
	Stakers    coin.Amount // to stakers and operators' commission
	Treasury   coin.Amount // to the treasury from rewards: its share and what nobody earned
	Fees       coin.Amount // to the treasury from the fee split
}

var (
	keyParams = []byte("rewards/params")
	keyEpoch  = []byte("rewards/epoch")
	keyTotals = []byte("rewards/totals")
	// keySpent: what the treasury has paid out (treasury/spend), apart
	// from Totals so that their stored layout stays as it was.
	keySpent = []byte("rewards/treasury_spent")
	// WorkPrefix + miner address: the miner's Work in the current epoch.
	WorkPrefix = []byte("rewards/w/")
)

func keyWork(a address.Address) []byte {
	return append(WorkPrefix[:len(WorkPrefix):len(WorkPrefix)], a[:]...)
}

// Bank is what the module needs of the bank.
type Bank interface {
	Mint(kv *state.Cache, a address.Address, amount coin.Amount) error
	Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
}

// Staking pays an epoch's staker pot.
type Staking interface {
	// DistributeRewards pays up to pot from the account from to operators
	// (commission) and their stakers, and returns what it paid.
	DistributeRewards(ctx *module.Context, from address.Address, pot coin.Amount) (coin.Amount, error)
}

// Pools says where a miner's earnings go: to its pool's account (recording
// the pool's share) or to the miner.
type Pools interface {
	Route(kv *state.Cache, miner address.Address, tokens uint64, amount coin.Amount) (address.Address, error)
}

// Keeper implements the module.
type Keeper struct {
	bank              Bank
	staking           Staking
	pools             Pools
	pending, treasury address.Address
}

// NewKeeper returns the module over the bank, the staking module and the
// pools module (either may be nil: no stakers, no pools).
func NewKeeper(b Bank, s Staking, p Pools) *Keeper {
	return &Keeper{bank: b, staking: s, pools: p, pending: address.Module(PendingAccount), treasury: address.Module(TreasuryAccount)}
}

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.EndBlocker = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Accounts   = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Accounts implements module.Accounts.
func (*Keeper) Accounts() []string { return []string{PendingAccount, TreasuryAccount} }

// Params reads the parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, DefaultParams())
}

// Treasury is the treasury's address.
func (k *Keeper) Treasury() address.Address { return k.treasury }

func read[T any](r state.Reader, key []byte) (T, error) {
	var v T
	b, err := r.Get(key)
	if err != nil || b == nil {
		return v, err
	}
	if err := tx.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("rewards: corrupt record %q: %w", key, err)
	}
	return v, nil
}

func write(kv *state.Cache, key []byte, v any) error {
	b, err := tx.Marshal(v)
	if err != nil {
		return err
	}
	kv.Set(key, b)
	return nil
}

// CurrentEpoch reads the current epoch's pots.
func (*Keeper) CurrentEpoch(r state.Reader) (Epoch, error) { return read[Epoch](r, keyEpoch) }

// ReadTotals reads what was issued and paid since genesis.
func (*Keeper) ReadTotals(r state.Reader) (Totals, error) { return read[Totals](r, keyTotals) }

// WorkOf reads a miner's work in the current epoch.
func (*Keeper) WorkOf(r state.Reader, a address.Address) (Work, error) {
	b, err := r.Get(keyWork(a))
	if err != nil || b == nil {
		return Work{}, err
	}
	if len(b) != 16 {
		return Work{}, fmt.Errorf("rewards: corrupt work record of %s", a)
	}
	return Work{Tokens: binary.BigEndian.Uint64(b), Fees: coin.Amount(binary.BigEndian.Uint64(b[8:]))}, nil
}

func putWork(kv *state.Cache, a address.Address, w Work) {
	b := binary.BigEndian.AppendUint64(nil, w.Tokens)
	kv.Set(keyWork(a), binary.BigEndian.AppendUint64(b, uint64(w.Fees)))
}

// Settled implements the jobs module's Earnings: a settlement's output
// tokens and protocol fee count as the miner's work this epoch, and its
// pay goes where the pools module says (the miner's pool, or the miner).
func (k *Keeper) Settled(ctx *module.Context, miner address.Address, tokens uint64, price, fee coin.Amount) (address.Address, error) {
	w, err := k.WorkOf(ctx.KV, miner)
	if err != nil {
		return address.Address{}, err
	}
	w.Tokens += tokens
	if w.Fees, err = w.Fees.Add(fee); err != nil {
		return address.Address{}, err
	}
	putWork(ctx.KV, miner, w)
	return k.route(ctx.KV, miner, tokens, price)
}

// Withhold takes a settled job's work (its output tokens and protocol
// fee) back out of the miner's count this epoch: the audits module does,
// in the same settlement that counted it, for a job it holds for a spot
// check. Credit counts it again once the job's pay is released, so a job
// confirmed as fraud never earns a share of an epoch's miner pot, even
// when its check ends in a later epoch.
func (k *Keeper) Withhold(kv *state.Cache, miner address.Address, tokens uint64, fee coin.Amount) error {
	w, err := k.WorkOf(kv, miner)
	if err != nil {
		return err
	}
	if w.Tokens < tokens || w.Fees < fee {
		return fmt.Errorf("rewards: withholding %d tokens and %s fees of miner %s, which counts %d and %s", tokens, fee, miner, w.Tokens, w.Fees)
	}
	w.Tokens, w.Fees = w.Tokens-tokens, w.Fees-fee
	if w == (Work{}) {
		kv.Delete(keyWork(miner)) // as if never counted: no empty record for the epoch's payout to read
		return nil
	}
	putWork(kv, miner, w)
	return nil
}

// Credit counts work withheld at settlement toward the current epoch.
func (k *Keeper) Credit(kv *state.Cache, miner address.Address, tokens uint64, fee coin.Amount) error {
	if tokens == 0 && fee == 0 {
		return nil
	}
	w, err := k.WorkOf(kv, miner)
	if err != nil {
		return err
	}
	w.Tokens += tokens
	if w.Fees, err = w.Fees.Add(fee); err != nil {
		return err
	}
	putWork(kv, miner, w)
	return nil
}

func (k *Keeper) route(kv *state.Cache, miner address.Address, tokens uint64, amount coin.Amount) (address.Address, error) {
	if k.pools == nil {
		return miner, nil
	}
	return k.pools.Route(kv, miner, tokens, amount)
}

// FundTreasury moves amount from an account (the fee collector) into the
// treasury, recording it.
func (k *Keeper) FundTreasury(kv *state.Cache, from address.Address, amount coin.Amount) error {
	if amount == 0 {
		return nil
	}
	if err := k.bank.Send(kv, from, k.treasury, amount); err != nil {
		return err
	}
	t, err := k.ReadTotals(kv)
	if err != nil {
		return err
	}
	if t.Fees, err = t.Fees.Add(amount); err != nil {
		return err
	}
	return write(kv, keyTotals, t)
}

// ErrTreasuryFunds means a spend exceeds what the treasury holds.
var ErrTreasuryFunds = errs.Register("rewards", 3, "treasury_insufficient", "the treasury holds less than the amount")

// TreasurySpent returns what the treasury has paid out since genesis.
func (*Keeper) TreasurySpent(r state.Reader) (coin.Amount, error) {
	b, err := r.Get(keySpent)
	if err != nil || b == nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("rewards: corrupt treasury_spent")
	}
	return coin.Amount(binary.BigEndian.Uint64(b)), nil
}

// SpendTreasury pays amount from the treasury to to and records it, so
// that the treasury's invariant (paid in − spent = balance) still holds.
// The caller (the treasury module) decides who may spend and to whom.
func (k *Keeper) SpendTreasury(kv *state.Cache, to address.Address, amount coin.Amount) error {
	bal, err := k.bank.Balance(kv, k.treasury)
	if err != nil {
		return err
	}
	if amount > bal {
		return fmt.Errorf("%w: %s AITBC asked, the treasury holds %s", ErrTreasuryFunds, amount, bal)
	}
	spent, err := k.TreasurySpent(kv)
	if err != nil {
		return err
	}
	if err := k.bank.Send(kv, k.treasury, to, amount); err != nil {
		return err
	}
	kv.Set(keySpent, binary.BigEndian.AppendUint64(nil, uint64(spent+amount)))
	return nil
}
