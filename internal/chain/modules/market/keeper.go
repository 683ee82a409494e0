// Package market is the chain module of the AI-compute marketplace: service
// listings (a provider's offer: type, price per unit — per job, per 1,000
// output tokens or per hour —, parameters, hardware, availability,
// capacity), bids with deposits, agreements that lock the customer's
// payment, payouts to providers with a protocol fee, ratings, disputes and
// the provider facts that reputation is computed from.
//
// Money the module holds is the balance of one module account,
// "market.escrow": the deposits of open bids, what agreements have locked
// and not yet paid out or refunded, and payouts waiting out their dispute
// window. A provider is paid through payouts: a customer's settle-payment,
// a job run under the agreement that settles on chain (its delivery is
// seen by EndBlock), or the time used of a per-hour lease. A payout is
// released to the provider, less the protocol fee (to the block's fee split), once its dispute
// window has passed without a dispute; a disputed payout stays held until
// the dispute is resolved (the provider concedes, the customer withdraws
// it, the arbiter rules, or its timeout passes).
//
// Invariants: the escrow account holds exactly the open bids' deposits, the
// agreements' unspent locks and the held payouts; every agreement's payouts
// add up to what it drew; every finished payout paid out exactly its
// amount; every listing counts its live agreements.
//
// See docs/MARKETPLACE.md. Imported by internal/chain/modules (the module
// list) and by clients, which build messages with the New…Msg builders and
// read state with the Query… functions.
package market

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "market"

// EscrowAccount is the module account that holds every locked coin of the
// marketplace.
const EscrowAccount = "market.escrow"

// Params of the module.
type Params struct {
	// FeeBps is the protocol fee on a payout, sent to the fee collector
	// and split with the block's fees (docs/ECONOMICS.md). A payout's amount
	// includes it, as a job's max price does: the provider gets
	// amount × 10000 / (10000 + fee_bps), the fee is the rest.
	FeeBps uint64 `json:"fee_bps"`
	// BidDeposit is held from the customer while a bid is open and counts
	// towards the payment when the bid is accepted. A bid whose total is
	// below it is refused.
	BidDeposit coin.Amount `json:"bid_deposit"`
	// MaxOpenBids caps a customer's open bids on one service.
	MaxOpenBids uint32 `json:"max_open_bids"`
	// BidTTL is how long an open bid lives (seconds); then its deposit
	// returns.
	BidTTL int64 `json:"bid_ttl_s"`
	// MaxPrice is the highest price per unit a listing or bid may name.
	MaxPrice coin.Amount `json:"max_price"`
	// MaxUnits caps the units (jobs, hours, thousands of tokens) of one bid.
	MaxUnits uint64 `json:"max_units"`
	// DisputeWindow is how long a payout is held before release (seconds):
	// the customer may dispute it meanwhile.
	DisputeWindow int64 `json:"dispute_window_s"`
	// DisputeTimeout is how long a dispute may stay open (seconds); an
	// unresolved one then releases the payout to the provider.
	DisputeTimeout int64 `json:"dispute_timeout_s"`
	// CloseDelay is how long after a customer closes a per-job or
	// per-1k-tokens agreement the rest is refunded (seconds): jobs it
	// started meanwhile still settle and are paid for (the marketplace's
	// half of "pay before you get").
	CloseDelay int64 `json:"close_delay_s"`
	// Arbiter, when set, may resolve any dispute either way.
	Arbiter *address.Address `json:"arbiter,omitempty"`
	// DisputeSlashBps is the part of the stake delegated to a provider
	// (staking module) that is slashed, and burned, when it loses a
	// dispute: it refunds, or the arbiter rules a refund.
	DisputeSlashBps uint64 `json:"dispute_slash_bps"`
}

// DefaultParams: a 10% fee as jobs have, 1 AITBC bid deposit, 5 open bids
// per customer and service, bids live a day, 5 minutes to dispute a payout,
// a week to resolve it, a customer's close takes effect after 10 minutes,
// 5% of a provider's stake slashed for a lost dispute (as for a double
// signature).
func DefaultParams() Params {
	return Params{FeeBps: 1000, BidDeposit: coin.Unit, MaxOpenBids: 5, BidTTL: 86400, MaxPrice: 1_000_000 * coin.Unit,
		MaxUnits: 10_000, DisputeWindow: 300, DisputeTimeout: 7 * 86400, CloseDelay: 600, DisputeSlashBps: 500}
}

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.FeeBps > 10_000 || p.BidDeposit == 0 || p.MaxOpenBids == 0 || p.BidTTL < 1 || p.MaxPrice == 0 || p.MaxUnits == 0 ||
		p.DisputeWindow < 0 || p.DisputeTimeout < 1 || p.CloseDelay < 0 || p.DisputeSlashBps > 10_000 {
		return fmt.Errorf("market: invalid parameters %+v", p)
	}
	return nil
}

// Split divides a payout's amount into the provider's share and the
// protocol fee: the fee is fee_bps of the share, and both together are the
// amount (the formula of a job whose price meets its escrow).
func (p Params) Split(amount coin.Amount) (provider, fee coin.Amount) {
	provider = amount.MulDiv(10_000, 10_000+p.FeeBps)
	return provider, amount - provider
}

// Service types and their default units.
const (
	TypeAIInference    = "ai-inference"
	TypeAITraining     = "ai-training"
	TypeGPURental      = "gpu-rental"
	TypeDataProcessing = "data-processing"
	TypeGPUCompute     = "gpu-compute"
)

// Types lists the service types, in the order help texts show them.
var Types = []string{TypeAIInference, TypeAITraining, TypeGPURental, TypeDataProcessing, TypeGPUCompute}

// Units a price is quoted in.
const (
	UnitJob       = "job"
	UnitKTokens   = "1k-tokens"
	UnitHour      = "hour"
	secondsInHour = 3600
)

// Units lists the price units.
var Units = []string{UnitJob, UnitKTokens, UnitHour}

// DefaultUnit is the unit a type is priced in unless the listing says.
func DefaultUnit(typ string) string {
	switch typ {
	case TypeGPURental, TypeGPUCompute:
		return UnitHour
	}
	return UnitJob
}

// Listing status.
const (
	ListingActive uint8 = 1
	ListingPaused uint8 = 2
	ListingClosed uint8 = 3
)

// ListingStatusName names a listing status.
func ListingStatusName(s uint8) string {
	switch s {
	case ListingActive:
		return "active"
	case ListingPaused:
		return "paused"
	case ListingClosed:
		return "closed"
	}
	return "unknown"
}

// Param is one key:value parameter of a listing.
type Param struct {
	_     struct{} `cbor:",toarray"`
	Key   string
	Value string
}

// Listing is a provider's service on offer.
type Listing struct {
	_           struct{} `cbor:",toarray"`
	ID          string
	Provider    []byte
	ListedBy    []byte // who signed the listing: the provider, or a coordinator for its tenant
	Name        string
	Type        string
	Unit        string
	Price       coin.Amount // per unit
	Description string
	Params      []Param
	Model       string // the model an ai-inference service runs ("" any)
	GPU         string
	GPUMemoryMB uint64
	Capacity    uint32 // live agreements at once; 0: unlimited
	Live        uint32 // agreements active or closing
	From, Until int64  // availability window, block time (unix s); 0: open
	AutoAccept  bool   // orders and bids at or above the price become agreements at once
	Status      uint8
	Created     int64 // height
	// PriceMin and PriceMax bound a dynamic price (market pricing): the
	// provider reprices within them as its utilization moves.
	PriceMin, PriceMax coin.Amount
	Strategy           string // "fixed" or "dynamic"
}

// ProviderAddr is the listing's provider.
func (l *Listing) ProviderAddr() address.Address { a, _ := address.FromBytes(l.Provider); return a }

// ListedByAddr is who signed the listing.
func (l *Listing) ListedByAddr() address.Address { a, _ := address.FromBytes(l.ListedBy); return a }

// Available reports whether the listing's availability window holds at t
// (unix seconds).
func (l *Listing) Available(t int64) bool {
	return (l.From == 0 || t >= l.From) && (l.Until == 0 || t <= l.Until)
}

// Full reports whether the listing has no capacity for another agreement.
func (l *Listing) Full() bool { return l.Capacity > 0 && l.Live >= l.Capacity }

// Bid status (the agreement it becomes has its own).
const (
	BidOpen      uint8 = 1
	BidAccepted  uint8 = 2
	BidWithdrawn uint8 = 3
	BidRejected  uint8 = 4
	BidExpired   uint8 = 5
)

// BidStatusName names a bid status.
func BidStatusName(s uint8) string {
	switch s {
	case BidOpen:
		return "open"
	case BidAccepted:
		return "accepted"
	case BidWithdrawn:
		return "withdrawn"
	case BidRejected:
		return "rejected"
	case BidExpired:
		return "expired"
	}
	return "unknown"
}

// Bid is a customer's offer on a listing: a price per unit for a number
// of units, with a deposit held while it is open.
type Bid struct {
	_        struct{} `cbor:",toarray"`
	ID       string
	Service  string
	Customer []byte
	Provider []byte
	Price    coin.Amount // per unit
	Units    uint64
	Deposit  coin.Amount // held in the escrow account while open
	Created  int64       // height
	Expires  int64       // block time, unix s
	Status   uint8
}

// Total is what the bid offers in all.
func (b *Bid) Total() coin.Amount { return b.Price.MulDiv(b.Units, 1) }

// CustomerAddr is the bid's customer.
func (b *Bid) CustomerAddr() address.Address { a, _ := address.FromBytes(b.Customer); return a }

// Agreement status.
const (
	AgreementActive    uint8 = 1
	AgreementClosing   uint8 = 2 // the customer closed it; the rest returns at CloseAt
	AgreementCompleted uint8 = 3 // everything locked was paid out
	AgreementClosed    uint8 = 4 // closed with the rest refunded
)

// AgreementStatusName names an agreement status.
func AgreementStatusName(s uint8) string {
	switch s {
	case AgreementActive:
		return "active"
	case AgreementClosing:
		return "closing"
	case AgreementCompleted:
		return "completed"
	case AgreementClosed:
		return "closed"
	}
	return "unknown"
}

// Agreement is an accepted bid: the customer's payment locked for the
// provider. Its id is the bid's.
type Agreement struct {
	_         struct{} `cbor:",toarray"`
	ID        string
	Service   string
	Customer  []byte
	Provider  []byte
	Unit      string
	Price     coin.Amount // per unit
	Units     uint64
	Locked    coin.Amount // price × units, in the escrow account from acceptance
	Drawn     coin.Amount // moved into payouts
	Refunded  coin.Amount // returned to the customer
	Start     int64       // block time of acceptance (unix s)
	Accepted  int64       // height
	Status    uint8
	CloseAt   int64  // block time a customer's close takes effect
	Jobs      uint32 // jobs bound to it
	Delivered uint32 // bound jobs that settled and were paid for
	Failed    uint32 // bound jobs that expired or were canceled
	Payouts   uint32 // payouts created
	Ended     int64  // height it finished
}

// CustomerAddr is the agreement's customer.
func (a *Agreement) CustomerAddr() address.Address { x, _ := address.FromBytes(a.Customer); return x }

// ProviderAddr is the agreement's provider.
func (a *Agreement) ProviderAddr() address.Address { x, _ := address.FromBytes(a.Provider); return x }

// Live reports whether the agreement still holds money for its provider.
func (a *Agreement) Live() bool { return a.Status == AgreementActive || a.Status == AgreementClosing }

// Remaining is what the agreement still holds.
func (a *Agreement) Remaining() coin.Amount { return a.Locked - a.Drawn - a.Refunded }

// Accrued is what a per-hour lease has earned by block time now: its price
// per hour for the time since acceptance, never more than it locked.
func (a *Agreement) Accrued(now int64) coin.Amount {
	if a.Unit != UnitHour || now <= a.Start {
		return 0
	}
	return min(a.Price.MulDiv(uint64(now-a.Start), secondsInHour), a.Locked)
}

// Payout status.
const (
	PayoutHeld     uint8 = 1 // waiting out the dispute window
	PayoutDisputed uint8 = 2
	PayoutReleased uint8 = 3 // paid to the provider, fee to the fee split
	PayoutRefunded uint8 = 4 // returned to the customer (dispute lost)
)

// PayoutStatusName names a payout status.
func PayoutStatusName(s uint8) string {
	switch s {
	case PayoutHeld:
		return "held"
	case PayoutDisputed:
		return "disputed"
	case PayoutReleased:
		return "released"
	case PayoutRefunded:
		return "refunded"
	}
	return "unknown"
}

// Payout kinds: why money was drawn from an agreement.
const (
	KindSettle   = "settle"   // the customer's settle-payment
	KindDelivery = "delivery" // a job run under the agreement settled
	KindLease    = "lease"    // time used of a per-hour lease
)

// Payout is money drawn from an agreement for its provider.
type Payout struct {
	_         struct{} `cbor:",toarray"`
	ID        string
	Agreement string
	Service   string
	Customer  []byte
	Provider  []byte
	Kind      string
	Ref       []byte      // the delivered job's id (delivery)
	Amount    coin.Amount // gross: the provider's share plus the fee
	Created   int64       // height
	At        int64       // block time it was drawn (unix s)
	ReleaseAt int64       // block time; a dispute holds it past this
	Status    uint8
	Paid      coin.Amount // to the provider
	Fee       coin.Amount // to the fee collector
	Refund    coin.Amount // to the customer
	Reason    string      // the dispute's
	DisputeAt int64       // block time the dispute was opened
	Ruling    string      // how the dispute ended
	Ended     int64       // height
}

// Pending reports whether the payout's money is still held.
func (p *Payout) Pending() bool { return p.Status == PayoutHeld || p.Status == PayoutDisputed }

// Rating is a customer's verdict on one delivered job (or one agreement
// paid by settle-payment).
type Rating struct {
	_         struct{} `cbor:",toarray"`
	Job       []byte   // the rated job, or
	Agreement string   // the rated agreement (paid by settle-payment)
	Service   string
	Provider  []byte
	Customer  []byte
	Stars     uint8
	Review    string
	Height    int64
}

// Facts are a provider's record on chain, what its reputation is computed
// from.
type Facts struct {
	_            struct{} `cbor:",toarray"`
	Listings     uint32
	Agreements   uint32
	Delivered    uint32 // jobs under its agreements that settled
	Failed       uint32 // jobs under its agreements that expired or were canceled
	Released     uint32 // payouts released
	Revenue      coin.Amount
	Disputes     uint32 // opened against it
	DisputesLost uint32
	RatingsSum   uint64
	Ratings      uint32
}

// Bank is what the module needs of the bank.
type Bank interface {
	Send(kv *state.Cache, from, to address.Address, amount coin.Amount) error
	CollectFee(kv *state.Cache, from address.Address, amount coin.Amount) error
	Balance(r state.Reader, a address.Address) (coin.Amount, error)
}

// Jobs is what the module needs of the jobs module.
type Jobs interface {
	Get(r state.Reader, id []byte) (*jobs.Job, error)
	Params(r state.Reader) (jobs.Params, error)
	// ChargeDeposit pays a coordinator from a customer's deposit with it
	// (the listing fee of market/create_for).
	ChargeDeposit(kv *state.Cache, cust, coord address.Address, amt coin.Amount) error
}

// ListingFee is what a provider pays the coordinator that lists a service
// for it (market/create_for, POST /v1/services/register), from its deposit
// with that coordinator: the chain's default minimum transaction fee, what
// the provider pays to list through the CLI (market/create), so that the
// coordinator, which paid the transaction's fee, is not out of pocket.
const ListingFee = coin.Unit / 1000

// Miners is what the module needs of the miner registry.
type Miners interface {
	Get(r state.Reader, a address.Address) (*miners.Miner, error)
	// Provider is the provider a miner named (miners/set_provider).
	Provider(r state.Reader, a address.Address) (address.Address, bool, error)
}

// Stake is what the module needs of the staking module: a provider's
// stake is frozen (no unstaking) while a dispute against it is open, and
// slashed when it loses one.
type Stake interface {
	Freeze(kv *state.Cache, op address.Address) error
	Unfreeze(kv *state.Cache, op address.Address) error
	Slash(ctx *module.Context, op address.Address, bps uint64) (coin.Amount, error)
}

// Keeper implements the module.
type Keeper struct {
	stake  Stake // nil: disputes touch no stake
	bank   Bank
	jobs   Jobs
	miners Miners
	escrow address.Address
}

// NewKeeper returns the module over the bank, the jobs module and the
// miner registry.
func NewKeeper(bank Bank, j Jobs, m Miners) *Keeper {
	return &Keeper{bank: bank, jobs: j, miners: m, escrow: address.Module(EscrowAccount)}
}

// SetStake gives the module the staking module, for disputes: a
// provider's stake is frozen while one is open and slashed when it loses.
func (k *Keeper) SetStake(s Stake) { k.stake = s }

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
func (*Keeper) Accounts() []string { return []string{EscrowAccount} }

// Keys. Records are keyed by id; the indexes hold no value of their own
// (ix, pl, ob, ca) or an id (pj).
var (
	keyParams       = []byte("market/params")
	keySeq          = []byte("market/seq")
	ListingPrefix   = []byte("market/l/")
	BidPrefix       = []byte("market/b/")
	AgreementPrefix = []byte("market/a/")
	PayoutPrefix    = []byte("market/po/")
	RatingPrefix    = []byte("market/rt/")
	FactsPrefix     = []byte("market/f/")
	typeIndexPrefix = []byte("market/ix/") // type ‖ 0 ‖ price ‖ id: active listings, cheapest first
	providerPrefix  = []byte("market/pl/") // provider ‖ id: a provider's listings
	openBidPrefix   = []byte("market/ob/") // service ‖ 0 ‖ id: open bids
	custAgrPrefix   = []byte("market/ca/") // customer ‖ service ‖ 0 ‖ id: a customer's agreements
	pendingPrefix   = []byte("market/pj/") // job id → agreement id: bound jobs not yet delivered
	boundPrefix     = []byte("market/jb/") // job id → agreement id: every bound job
	countPrefix     = []byte("market/nb/") // customer ‖ service: open bids
)

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

func keyListing(id string) []byte   { return cat(ListingPrefix, []byte(id)) }
func keyBid(id string) []byte       { return cat(BidPrefix, []byte(id)) }
func keyAgreement(id string) []byte { return cat(AgreementPrefix, []byte(id)) }
func keyPayout(id string) []byte    { return cat(PayoutPrefix, []byte(id)) }
func keyFacts(a address.Address) []byte {
	return cat(FactsPrefix, a[:])
}
func keyTypeIndex(typ string, price coin.Amount, id string) []byte {
	return cat(typeIndexPrefix, []byte(typ), []byte{0}, binary.BigEndian.AppendUint64(nil, uint64(price)), []byte(id))
}
func keyProviderIndex(p []byte, id string) []byte { return cat(providerPrefix, p, []byte(id)) }
func keyOpenBid(service, id string) []byte {
	return cat(openBidPrefix, []byte(service), []byte{0}, []byte(id))
}
func keyCustAgr(cust []byte, service, id string) []byte {
	return cat(custAgrPrefix, cust, []byte(service), []byte{0}, []byte(id))
}
func keyPending(job []byte) []byte { return cat(pendingPrefix, job) }
func keyBound(job []byte) []byte   { return cat(boundPrefix, job) }
func keyBidCount(cust []byte, service string) []byte {
	return cat(countPrefix, cust, []byte(service))
}

// Params reads the parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, DefaultParams())
}

// nextSeq returns the next number of the module's id sequence (shared by
// generated listing, bid and payout ids, so ids never repeat).
func nextSeq(kv *state.Cache) (uint64, error) {
	n, err := getUint(kv, keySeq)
	if err != nil {
		return 0, err
	}
	n++
	putUint(kv, keySeq, n)
	return n, nil
}

func seqID(prefix string, n uint64) string { return prefix + strconv.FormatUint(n, 10) }

func getUint(r state.Reader, key []byte) (uint64, error) {
	v, err := r.Get(key)
	if err != nil || len(v) == 0 {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("market: corrupt value under %q", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

func putUint(kv *state.Cache, key []byte, v uint64) {
	if v == 0 {
		kv.Delete(key)
		return
	}
	kv.Set(key, binary.BigEndian.AppendUint64(nil, v))
}

// get decodes the record under key into v; found is false when absent.
func get(r state.Reader, key []byte, v any) (found bool, err error) {
	b, err := r.Get(key)
	if err != nil || b == nil {
		return false, err
	}
	if err := tx.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("market: corrupt record %q: %w", key, err)
	}
	return true, nil
}

func put(kv *state.Cache, key []byte, v any) error {
	b, err := tx.Marshal(v)
	if err != nil {
		return err
	}
	kv.Set(key, b)
	return nil
}

// Listing returns the listing with id, or nil.
func (*Keeper) Listing(r state.Reader, id string) (*Listing, error) {
	var l Listing
	ok, err := get(r, keyListing(id), &l)
	if !ok {
		return nil, err
	}
	return &l, nil
}

// Bid returns the bid with id, or nil.
func (*Keeper) Bid(r state.Reader, id string) (*Bid, error) {
	var b Bid
	ok, err := get(r, keyBid(id), &b)
	if !ok {
		return nil, err
	}
	return &b, nil
}

// Agreement returns the agreement with id, or nil.
func (*Keeper) Agreement(r state.Reader, id string) (*Agreement, error) {
	var a Agreement
	ok, err := get(r, keyAgreement(id), &a)
	if !ok {
		return nil, err
	}
	return &a, nil
}

// Payout returns the payout with id, or nil.
func (*Keeper) Payout(r state.Reader, id string) (*Payout, error) {
	var p Payout
	ok, err := get(r, keyPayout(id), &p)
	if !ok {
		return nil, err
	}
	return &p, nil
}

// Facts returns a provider's facts (zero when it has none).
func (*Keeper) Facts(r state.Reader, a address.Address) (Facts, error) {
	var f Facts
	_, err := get(r, keyFacts(a), &f)
	return f, err
}

// updateFacts applies fn to a provider's facts.
func (k *Keeper) updateFacts(kv *state.Cache, a address.Address, fn func(f *Facts)) error {
	f, err := k.Facts(kv, a)
	if err != nil {
		return err
	}
	fn(&f)
	return put(kv, keyFacts(a), f)
}

// putListing stores l and keeps the type index in step: only active
// listings are in it, at their price.
func putListing(kv *state.Cache, old, l *Listing) error {
	if old != nil && old.Status == ListingActive {
		kv.Delete(keyTypeIndex(old.Type, old.Price, old.ID))
	}
	if l.Status == ListingActive {
		kv.Set(keyTypeIndex(l.Type, l.Price, l.ID), []byte{1})
	}
	return put(kv, keyListing(l.ID), l)
}
