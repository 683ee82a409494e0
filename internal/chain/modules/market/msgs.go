package market

import (
	"fmt"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypeCreate    = "market/create"     // list a service (signer: provider)
	TypeCreateFor = "market/create_for" // list a service for a provider (signer: a coordinator, for its tenant)
	TypeUpdate    = "market/update"     // pause, resume, close, reprice (signer: provider or lister)
	TypeBid       = "market/bid"        // bid on a service (signer: customer)
	TypeWithdraw  = "market/withdraw"   // withdraw an open bid (signer: customer)
	TypeReject    = "market/reject"     // reject an open bid (signer: provider)
	TypeAccept    = "market/accept"     // accept a bid: an agreement (signer: provider)
	TypeOrder     = "market/order"      // a reverse auction: the cheapest fitting listing, at once (signer: customer)
	TypeSettle    = "market/settle"     // pay the provider from an agreement (signer: customer)
	TypeClaim     = "market/claim"      // draw what a lease has earned (signer: provider)
	TypeClose     = "market/close"      // close an agreement (signer: customer or provider)
	TypeBind      = "market/bind"       // run a job under an agreement (signer: the job's customer or coordinator)
	TypeRate      = "market/rate"       // rate a delivered job (signer: customer, or the job's coordinator for it)
	TypeDispute   = "market/dispute"    // dispute a held payout (signer: customer)
	TypeResolve   = "market/resolve"    // end a dispute (signer: provider, customer or arbiter)
	// TypeAddMiner names a miner that runs the signer's jobs; the miner
	// consents with miners/set_provider (miners.go).
	TypeAddMiner    = "market/add_miner"    // signer: provider
	TypeRemoveMiner = "market/remove_miner" // signer: provider
)

// MsgMiner names a miner for market/add_miner and market/remove_miner.
type MsgMiner struct {
	_     struct{} `cbor:",toarray"`
	Miner []byte
}

// NewAddMinerMsg builds the provider's consent that miner runs its jobs.
func NewAddMinerMsg(miner address.Address) tx.Msg {
	return must(tx.NewMsg(TypeAddMiner, MsgMiner{Miner: miner[:]}))
}

// NewRemoveMinerMsg builds the end of the provider's consent.
func NewRemoveMinerMsg(miner address.Address) tx.Msg {
	return must(tx.NewMsg(TypeRemoveMiner, MsgMiner{Miner: miner[:]}))
}

// ListingSpec is what a provider offers.
type ListingSpec struct {
	_           struct{} `cbor:",toarray"`
	ID          string   // "" lets the chain choose one (svc-<n>)
	Name        string
	Type        string
	Unit        string // "" is the type's default
	Price       coin.Amount
	Description string
	Params      []Param
	Model       string
	GPU         string // "" takes the provider's miner record's, if it has one
	GPUMemoryMB uint64
	Capacity    uint32
	From, Until int64
	AutoAccept  bool
}

// MsgCreate lists a service offered by the signer.
type MsgCreate struct {
	_    struct{} `cbor:",toarray"`
	Spec ListingSpec
}

// MsgCreateFor lists a service offered by Provider, signed by the
// coordinator its provider registered it through.
type MsgCreateFor struct {
	_        struct{} `cbor:",toarray"`
	Spec     ListingSpec
	Provider []byte
}

// Listing updates.
const (
	OpPause   = "pause"
	OpResume  = "resume"
	OpClose   = "close"
	OpReprice = "reprice"
	OpPricing = "pricing" // set the dynamic price's bounds (and reprice within them)
)

// MsgUpdate changes a listing.
type MsgUpdate struct {
	_        struct{} `cbor:",toarray"`
	ID       string
	Op       string
	Price    coin.Amount // reprice, pricing: the new price
	PriceMin coin.Amount // pricing
	PriceMax coin.Amount // pricing
}

// MsgBid bids Price per unit for Units units of a service.
type MsgBid struct {
	_       struct{} `cbor:",toarray"`
	Service string
	Price   coin.Amount
	Units   uint64
	// AutoAccept makes the bid an agreement at once when the listing
	// accepts automatically and the bid meets its price.
	AutoAccept bool
}

// MsgRef names a bid, agreement or payout.
type MsgRef struct {
	_  struct{} `cbor:",toarray"`
	ID string
}

// MsgOrder asks for the cheapest active listing of a type (and model)
// that accepts automatically, has capacity, asks at most MaxPrice per
// unit and whose provider's reputation is at least MinScore: an agreement
// with it at its price, in one transaction.
type MsgOrder struct {
	_        struct{} `cbor:",toarray"`
	Type     string
	Model    string
	MaxPrice coin.Amount
	Units    uint64
	MinScore uint32 // 0-100
}

// MsgSettle pays Amount of an agreement to its provider (a payout).
type MsgSettle struct {
	_      struct{} `cbor:",toarray"`
	ID     string
	Amount coin.Amount
}

// MsgBind runs job Job under agreement ID: when the job settles on chain,
// the provider is paid for it from the agreement.
type MsgBind struct {
	_   struct{} `cbor:",toarray"`
	ID  string
	Job []byte
}

// MsgRate rates a delivered job (Job: its id) or an agreement paid by
// settle-payment (Agreement: its id); exactly one is set. Customer is set
// when the job's coordinator submits the rating for its tenant.
type MsgRate struct {
	_         struct{} `cbor:",toarray"`
	Job       []byte
	Agreement string
	Stars     uint8
	Review    string
	Customer  []byte
}

// MsgDispute disputes a held payout.
type MsgDispute struct {
	_      struct{} `cbor:",toarray"`
	ID     string
	Reason string
}

// MsgResolve ends a dispute: Refund returns the payout to the customer,
// otherwise it is released to the provider.
type MsgResolve struct {
	_      struct{} `cbor:",toarray"`
	ID     string
	Refund bool
}

func must(m tx.Msg, err error) tx.Msg {
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// NewCreateMsg builds a listing by the signer.
func NewCreateMsg(s ListingSpec) tx.Msg { return must(tx.NewMsg(TypeCreate, MsgCreate{Spec: s})) }

// NewCreateForMsg builds a listing for provider, signed by a coordinator.
func NewCreateForMsg(s ListingSpec, provider address.Address) tx.Msg {
	return must(tx.NewMsg(TypeCreateFor, MsgCreateFor{Spec: s, Provider: provider[:]}))
}

// NewUpdateMsg builds a pause, resume or close of a listing.
func NewUpdateMsg(id, op string) tx.Msg {
	return must(tx.NewMsg(TypeUpdate, MsgUpdate{ID: id, Op: op}))
}

// NewRepriceMsg builds a new price for a listing.
func NewRepriceMsg(id string, price coin.Amount) tx.Msg {
	return must(tx.NewMsg(TypeUpdate, MsgUpdate{ID: id, Op: OpReprice, Price: price}))
}

// NewPricingMsg sets a listing's dynamic price: its bounds and its price now.
func NewPricingMsg(id string, price, lo, hi coin.Amount) tx.Msg {
	return must(tx.NewMsg(TypeUpdate, MsgUpdate{ID: id, Op: OpPricing, Price: price, PriceMin: lo, PriceMax: hi}))
}

// NewBidMsg builds a bid of price per unit for units units.
func NewBidMsg(service string, price coin.Amount, units uint64, autoAccept bool) tx.Msg {
	return must(tx.NewMsg(TypeBid, MsgBid{Service: service, Price: price, Units: units, AutoAccept: autoAccept}))
}

// NewWithdrawMsg builds the withdrawal of an open bid.
func NewWithdrawMsg(bid string) tx.Msg { return must(tx.NewMsg(TypeWithdraw, MsgRef{ID: bid})) }

// NewRejectMsg builds the rejection of an open bid.
func NewRejectMsg(bid string) tx.Msg { return must(tx.NewMsg(TypeReject, MsgRef{ID: bid})) }

// NewAcceptMsg builds the acceptance of a bid.
func NewAcceptMsg(bid string) tx.Msg { return must(tx.NewMsg(TypeAccept, MsgRef{ID: bid})) }

// NewOrderMsg builds a reverse-auction order.
func NewOrderMsg(o MsgOrder) tx.Msg { return must(tx.NewMsg(TypeOrder, o)) }

// NewSettleMsg builds a payment of amount from an agreement to its provider.
func NewSettleMsg(agreement string, amount coin.Amount) tx.Msg {
	return must(tx.NewMsg(TypeSettle, MsgSettle{ID: agreement, Amount: amount}))
}

// NewClaimMsg builds a provider's claim of what its lease has earned.
func NewClaimMsg(agreement string) tx.Msg { return must(tx.NewMsg(TypeClaim, MsgRef{ID: agreement})) }

// NewCloseMsg builds the closing of an agreement.
func NewCloseMsg(agreement string) tx.Msg { return must(tx.NewMsg(TypeClose, MsgRef{ID: agreement})) }

// NewBindMsg builds the binding of a job to an agreement.
func NewBindMsg(agreement string, job []byte) tx.Msg {
	return must(tx.NewMsg(TypeBind, MsgBind{ID: agreement, Job: job}))
}

// NewRateMsg builds a customer's rating of a delivered job.
func NewRateMsg(job []byte, stars uint8, review string) tx.Msg {
	return must(tx.NewMsg(TypeRate, MsgRate{Job: job, Stars: stars, Review: review}))
}

// NewRateAgreementMsg builds a customer's rating of an agreement it paid
// by settle-payment.
func NewRateAgreementMsg(agreement string, stars uint8, review string) tx.Msg {
	return must(tx.NewMsg(TypeRate, MsgRate{Agreement: agreement, Stars: stars, Review: review}))
}

// NewRateForMsg builds a rating a coordinator submits for its tenant
// customer, of a job it coordinated.
func NewRateForMsg(job []byte, stars uint8, review string, customer address.Address) tx.Msg {
	return must(tx.NewMsg(TypeRate, MsgRate{Job: job, Stars: stars, Review: review, Customer: customer[:]}))
}

// NewDisputeMsg builds a dispute of a held payout.
func NewDisputeMsg(payout, reason string) tx.Msg {
	return must(tx.NewMsg(TypeDispute, MsgDispute{ID: payout, Reason: reason}))
}

// NewResolveMsg builds the end of a dispute.
func NewResolveMsg(payout string, refund bool) tx.Msg {
	return must(tx.NewMsg(TypeResolve, MsgResolve{ID: payout, Refund: refund}))
}

// NormalizeType maps the spellings the seeds use ("gpu_compute",
// "GPU Computing") onto the service types; "" when it is none of them.
func NormalizeType(s string) string {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.NewReplacer("_", "-", " ", "-").Replace(t)
	switch t {
	case "gpu-computing":
		t = TypeGPUCompute
	case "inference":
		t = TypeAIInference
	case "training":
		t = TypeAITraining
	}
	for _, x := range Types {
		if x == t {
			return t
		}
	}
	return ""
}

// NormalizeUnit maps unit spellings ("per hour", "hour", "1k", "job") onto
// the units; "" when it is none of them.
func NormalizeUnit(s string) string {
	u := strings.ToLower(strings.TrimSpace(s))
	u = strings.TrimPrefix(strings.TrimPrefix(u, "per-"), "per ")
	switch u {
	case "job", "jobs", "request":
		return UnitJob
	case "hour", "hours", "h":
		return UnitHour
	case "1k-tokens", "1k", "1k tokens", "1000-tokens", "ktokens":
		return UnitKTokens
	}
	return ""
}

// ValidID reports whether s can name a listing: 1-64 of a-z 0-9 . _ -,
// starting with a letter or digit.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return false
		}
	}
	return true
}

// ParseParams reads "k:v,k:v" (the seeds' --parameters). A value may
// contain commas when the next piece has no colon ("data_format:csv,json").
func ParseParams(s string) ([]Param, error) {
	var out []Param
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, piece := range strings.Split(s, ",") {
		piece = strings.TrimSpace(piece)
		k, v, ok := strings.Cut(piece, ":")
		if !ok {
			if len(out) == 0 {
				return nil, fmt.Errorf("%w: parameter %q is not key:value", ErrInvalidListing, piece)
			}
			out[len(out)-1].Value += "," + piece
			continue
		}
		out = append(out, Param{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v)})
	}
	return out, nil
}

// Param returns the value of key in the listing's parameters.
func (l *Listing) Param(key string) string {
	for _, p := range l.Params {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}
