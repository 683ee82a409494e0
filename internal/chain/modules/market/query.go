package market

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

func unix(sec int64) *time.Time {
	if sec == 0 {
		return nil
	}
	t := time.Unix(sec, 0).UTC()
	return &t
}

func addr(b []byte) address.Address { a, _ := address.FromBytes(b); return a }

// ServiceView is a listing as the API shows it.
type ServiceView struct {
	ID           string            `json:"service_id"`
	Name         string            `json:"name"`
	Type         string            `json:"type"`
	Provider     address.Address   `json:"provider"`
	ListedBy     address.Address   `json:"listed_by"`
	Price        coin.Amount       `json:"price"`
	Unit         string            `json:"unit"` // job, 1k-tokens, hour
	Description  string            `json:"description,omitempty"`
	Parameters   map[string]string `json:"parameters,omitempty"`
	Model        string            `json:"model,omitempty"`
	GPU          string            `json:"gpu,omitempty"`
	GPUMemoryMB  uint64            `json:"gpu_memory_mb,omitempty"`
	Capacity     uint32            `json:"capacity"` // 0: unlimited
	Live         uint32            `json:"live_agreements"`
	From         *time.Time        `json:"available_from,omitempty"`
	Until        *time.Time        `json:"available_until,omitempty"`
	AvailableNow bool              `json:"available_now"`
	AutoAccept   bool              `json:"auto_accept"`
	Status       string            `json:"status"` // active, paused, closed
	Strategy     string            `json:"pricing_strategy"`
	PriceMin     coin.Amount       `json:"price_min,omitempty"`
	PriceMax     coin.Amount       `json:"price_max,omitempty"`
	Created      int64             `json:"created_height"`
}

// ServiceOf describes a listing at block time now.
func ServiceOf(l *Listing, now int64) ServiceView {
	v := ServiceView{
		ID: l.ID, Name: l.Name, Type: l.Type, Provider: l.ProviderAddr(), ListedBy: l.ListedByAddr(), Price: l.Price, Unit: l.Unit,
		Description: l.Description, Model: l.Model, GPU: l.GPU, GPUMemoryMB: l.GPUMemoryMB, Capacity: l.Capacity, Live: l.Live,
		From: unix(l.From), Until: unix(l.Until), AvailableNow: l.Status == ListingActive && l.Available(now) && !l.Full(),
		AutoAccept: l.AutoAccept, Status: ListingStatusName(l.Status), Strategy: l.Strategy, PriceMin: l.PriceMin, PriceMax: l.PriceMax,
		Created: l.Created,
	}
	if len(l.Params) > 0 {
		v.Parameters = map[string]string{}
		for _, p := range l.Params {
			v.Parameters[p.Key] = p.Value
		}
	}
	return v
}

// ServiceList is GET /api/v1/market/services.
type ServiceList struct {
	Height   int64         `json:"height"`
	Services []ServiceView `json:"services"`
}

// ServiceDetail is GET /api/v1/market/services/{id}: the listing, its
// provider's reputation and its open bids.
type ServiceDetail struct {
	ServiceView
	Reputation Reputation `json:"reputation"`
	OpenBids   []BidView  `json:"open_bids"`
	// Serving are the active miners that may run jobs under the service's
	// agreements: the provider's own and those named both ways (miners.go).
	Serving []address.Address `json:"serving_miners"`
	Height  int64             `json:"height"`
}

// BidView is a bid as the API shows it.
type BidView struct {
	ID       string          `json:"bid_id"`
	Service  string          `json:"service_id"`
	Customer address.Address `json:"customer"`
	Provider address.Address `json:"provider"`
	Price    coin.Amount     `json:"price"`
	Units    uint64          `json:"units"`
	Total    coin.Amount     `json:"total"`
	Deposit  coin.Amount     `json:"deposit"`
	Status   string          `json:"status"`
	Created  int64           `json:"created_height"`
	Expires  *time.Time      `json:"expires,omitempty"`
}

// BidOf describes a bid.
func BidOf(b *Bid) BidView {
	return BidView{ID: b.ID, Service: b.Service, Customer: b.CustomerAddr(), Provider: addr(b.Provider), Price: b.Price, Units: b.Units,
		Total: b.Total(), Deposit: b.Deposit, Status: BidStatusName(b.Status), Created: b.Created, Expires: unix(b.Expires)}
}

// BidList is GET /api/v1/market/bids.
type BidList struct {
	Height int64     `json:"height"`
	Bids   []BidView `json:"bids"`
}

// AgreementView is an agreement as the API shows it.
type AgreementView struct {
	ID        string          `json:"agreement_id"` // the accepted bid's id
	Service   string          `json:"service_id"`
	Customer  address.Address `json:"customer"`
	Provider  address.Address `json:"provider"`
	Unit      string          `json:"unit"`
	Price     coin.Amount     `json:"price"`
	Units     uint64          `json:"units"`
	Locked    coin.Amount     `json:"locked"`
	Drawn     coin.Amount     `json:"drawn"`    // into payouts
	Refunded  coin.Amount     `json:"refunded"` // back to the customer
	Remaining coin.Amount     `json:"remaining"`
	Accrued   coin.Amount     `json:"accrued,omitempty"` // a lease's earnings so far
	Status    string          `json:"status"`
	Start     *time.Time      `json:"start"`
	CloseAt   *time.Time      `json:"close_at,omitempty"`
	Jobs      uint32          `json:"jobs"`
	Delivered uint32          `json:"delivered"`
	Failed    uint32          `json:"failed"`
	Accepted  int64           `json:"accepted_height"`
	Ended     int64           `json:"ended_height,omitempty"`
	Payouts   []PayoutView    `json:"payouts,omitempty"`
}

// AgreementOf describes an agreement at block time now.
func AgreementOf(a *Agreement, now int64) AgreementView {
	return AgreementView{ID: a.ID, Service: a.Service, Customer: a.CustomerAddr(), Provider: a.ProviderAddr(), Unit: a.Unit, Price: a.Price,
		Units: a.Units, Locked: a.Locked, Drawn: a.Drawn, Refunded: a.Refunded, Remaining: a.Remaining(), Accrued: a.Accrued(now),
		Status: AgreementStatusName(a.Status), Start: unix(a.Start), CloseAt: unix(a.CloseAt), Jobs: a.Jobs, Delivered: a.Delivered,
		Failed: a.Failed, Accepted: a.Accepted, Ended: a.Ended}
}

// AgreementList is GET /api/v1/market/agreements.
type AgreementList struct {
	Height     int64           `json:"height"`
	Agreements []AgreementView `json:"agreements"`
}

// PayoutView is a payout as the API shows it.
type PayoutView struct {
	ID        string          `json:"payout_id"`
	Agreement string          `json:"agreement_id"`
	Service   string          `json:"service_id"`
	Customer  address.Address `json:"customer"`
	Provider  address.Address `json:"provider"`
	Kind      string          `json:"kind"` // settle, delivery, lease
	JobID     string          `json:"job_id,omitempty"`
	Amount    coin.Amount     `json:"amount"`
	Status    string          `json:"status"` // held, disputed, released, refunded
	At        *time.Time      `json:"at"`
	ReleaseAt *time.Time      `json:"release_at"`
	Paid      coin.Amount     `json:"paid"`
	Fee       coin.Amount     `json:"protocol_fee"` // split with the block's fees, like a job's
	Refund    coin.Amount     `json:"refund"`
	Reason    string          `json:"dispute_reason,omitempty"`
	Ruling    string          `json:"ruling,omitempty"`
	Created   int64           `json:"created_height"`
	Ended     int64           `json:"ended_height,omitempty"`
}

// PayoutOf describes a payout.
func PayoutOf(p *Payout) PayoutView {
	v := PayoutView{ID: p.ID, Agreement: p.Agreement, Service: p.Service, Customer: addr(p.Customer), Provider: addr(p.Provider), Kind: p.Kind,
		Amount: p.Amount, Status: PayoutStatusName(p.Status), At: unix(p.At), ReleaseAt: unix(p.ReleaseAt), Paid: p.Paid, Fee: p.Fee,
		Refund: p.Refund, Reason: p.Reason, Ruling: p.Ruling, Created: p.Created, Ended: p.Ended}
	if len(p.Ref) > 0 {
		v.JobID = hex.EncodeToString(p.Ref)
	}
	return v
}

// PayoutList is GET /api/v1/market/payouts.
type PayoutList struct {
	Height  int64        `json:"height"`
	Payouts []PayoutView `json:"payouts"`
}

// RatingView is a rating as the API shows it.
type RatingView struct {
	JobID     string          `json:"job_id,omitempty"`
	Agreement string          `json:"agreement_id"`
	Service   string          `json:"service_id"`
	Provider  address.Address `json:"provider"`
	Customer  address.Address `json:"customer"`
	Stars     uint8           `json:"rating"`
	Review    string          `json:"review,omitempty"`
	Height    int64           `json:"height"`
}

// RatingList is GET /api/v1/market/ratings.
type RatingList struct {
	Height  int64        `json:"height"`
	Ratings []RatingView `json:"ratings"`
}

// FactsView is a provider's facts in JSON.
type FactsView struct {
	Listings     uint32      `json:"listings"`
	Agreements   uint32      `json:"agreements"`
	Delivered    uint32      `json:"jobs_delivered"`
	Failed       uint32      `json:"jobs_failed"`
	Released     uint32      `json:"payouts_released"`
	Revenue      coin.Amount `json:"revenue"`
	Disputes     uint32      `json:"disputes"`
	DisputesLost uint32      `json:"disputes_lost"`
	Ratings      uint32      `json:"ratings"`
	AvgRating    float64     `json:"average_rating"`
}

// ProviderView is GET /api/v1/market/providers/{address}: a provider's
// facts, its reputation with its parts, and what it runs.
type ProviderView struct {
	Address    address.Address `json:"provider"`
	Facts      FactsView       `json:"facts"`
	Reputation Reputation      `json:"reputation"`
	Miner      *MinerFacts     `json:"miner,omitempty"`
	// Miners are the miners the provider named (market/add_miner), each
	// with whether it named the provider back; Serving are the active
	// miners that may run its jobs (its own and those named both ways).
	Miners   []MinerLink       `json:"miners"`
	Serving  []address.Address `json:"serving_miners"`
	Services []ServiceView     `json:"services"`
	Height   int64             `json:"height"`
}

// MinerFacts is what the miner registry says of a provider that runs a miner.
type MinerFacts struct {
	Status        string      `json:"status"`
	Stake         coin.Amount `json:"stake"`
	JobsSettled   uint64      `json:"jobs_settled"`
	LastHeartbeat time.Time   `json:"last_heartbeat"`
	Models        []string    `json:"models"`
	GPU           string      `json:"gpu"`
}

// JobBinding is GET /api/v1/market/jobs/{id}: the agreement a job runs under.
type JobBinding struct {
	JobID     string `json:"job_id"`
	Agreement string `json:"agreement_id"`
	Service   string `json:"service_id"`
	Pending   bool   `json:"pending"` // not yet seen settled or ended
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/market/params", Summary: "the market module's parameters", Handle: k.qParams},
		{Method: "GET", Path: "/api/v1/market/services", Summary: "service listings, filtered", Handle: k.qServices},
		{Method: "GET", Path: "/api/v1/market/services/{id}", Summary: "a listing with its provider's reputation and open bids", Handle: k.qService},
		{Method: "GET", Path: "/api/v1/market/bids", Summary: "bids, filtered", Handle: k.qBids},
		{Method: "GET", Path: "/api/v1/market/bids/{id}", Summary: "one bid", Handle: k.qBid},
		{Method: "GET", Path: "/api/v1/market/agreements", Summary: "agreements, filtered", Handle: k.qAgreements},
		{Method: "GET", Path: "/api/v1/market/agreements/{id}", Summary: "an agreement with its payouts", Handle: k.qAgreement},
		{Method: "GET", Path: "/api/v1/market/payouts", Summary: "payouts, filtered", Handle: k.qPayouts},
		{Method: "GET", Path: "/api/v1/market/payouts/{id}", Summary: "one payout", Handle: k.qPayout},
		{Method: "GET", Path: "/api/v1/market/ratings", Summary: "ratings, filtered", Handle: k.qRatings},
		{Method: "GET", Path: "/api/v1/market/providers/{address}", Summary: "a provider's facts and reputation", Handle: k.qProvider},
		{Method: "GET", Path: "/api/v1/market/reputations", Summary: "the reputation of each of the given providers (?providers=a,b,...; at most 256)", Handle: k.qReputations},
		{Method: "GET", Path: "/api/v1/market/jobs/{id}", Summary: "the agreement a job runs under", Handle: k.qJob},
		{Method: "GET", Path: "/api/v1/market/quote", Summary: "what a job would cost now, and who can serve it or why not", Handle: k.qQuote},
	}
}

func (k *Keeper) qParams(q module.Query, _ module.Request) (any, error) { return k.Params(q.State) }

// filter holds the list queries' optional filters.
type filter struct {
	provider, customer *address.Address
	service, agreement string
	status             string
	since              int64
}

func parseFilter(in module.Request) (filter, error) {
	var f filter
	for _, name := range []string{"provider", "customer"} {
		if s := in.Param(name); s != "" {
			a, err := address.Parse(s)
			if err != nil {
				return f, fmt.Errorf("%w: %s: %v", errs.ErrInvalidAddress, name, err)
			}
			if name == "provider" {
				f.provider = &a
			} else {
				f.customer = &a
			}
		}
	}
	f.service, f.agreement, f.status = in.Param("service"), in.Param("agreement"), in.Param("status")
	if s := in.Param("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return f, fmt.Errorf("%w: since must be unix seconds", ErrInvalidBid)
		}
		f.since = n
	}
	return f, nil
}

func (f filter) match(prov, cust []byte, service, agreement, status string) bool {
	return (f.provider == nil || string(f.provider[:]) == string(prov)) && (f.customer == nil || string(f.customer[:]) == string(cust)) &&
		(f.service == "" || f.service == service) && (f.agreement == "" || f.agreement == agreement) && (f.status == "" || f.status == status)
}

func parseAmount(in module.Request, name string) (coin.Amount, error) {
	s := in.Param(name)
	if s == "" {
		return 0, nil
	}
	a, err := coin.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrInvalidPrice, name, err)
	}
	return a, nil
}

func (k *Keeper) qServices(q module.Query, in module.Request) (any, error) {
	f, err := parseFilter(in)
	if err != nil {
		return nil, err
	}
	lo, err := parseAmount(in, "min_price")
	if err != nil {
		return nil, err
	}
	hi, err := parseAmount(in, "max_price")
	if err != nil {
		return nil, err
	}
	var minMem uint64
	if s := in.Param("min_memory_mb"); s != "" {
		if minMem, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: min_memory_mb", ErrInvalidListing)
		}
	}
	typ := in.Param("type")
	if typ != "" {
		if typ = NormalizeType(typ); typ == "" {
			return nil, fmt.Errorf("%w: type %q: one of %v", ErrInvalidListing, in.Param("type"), Types)
		}
	}
	words := strings.Fields(strings.ToLower(in.Param("q")))
	gpu := strings.ToLower(in.Param("gpu"))
	model := in.Param("model")
	availNow := in.Param("available") == "now" || in.Param("available") == "true"
	now := q.Time.Unix()
	out := ServiceList{Height: q.Height, Services: []ServiceView{}}
	err = each(q.State, ListingPrefix, func(l *Listing) error {
		hay := strings.ToLower(l.ID + " " + l.Name + " " + l.Type + " " + l.Description + " " + l.Model + " " + l.GPU)
		for _, p := range l.Params {
			hay += " " + strings.ToLower(p.Key+":"+p.Value)
		}
		status := f.status
		if status == "" && in.Param("all") == "" {
			status = "!closed"
		}
		switch {
		case !f.match(l.Provider, nil, l.ID, "", ""):
		case status == "!closed" && l.Status == ListingClosed:
		case status != "" && status != "!closed" && status != ListingStatusName(l.Status):
		case typ != "" && l.Type != typ:
		case lo > 0 && l.Price < lo, hi > 0 && l.Price > hi:
		case gpu != "" && !strings.Contains(strings.ToLower(l.GPU), gpu):
		case minMem > 0 && l.GPUMemoryMB < minMem:
		case model != "" && l.Model != "" && l.Model != model:
		case availNow && !(l.Status == ListingActive && l.Available(now) && !l.Full()):
		case !matchAll(hay, words):
		default:
			out.Services = append(out.Services, ServiceOf(l, now))
		}
		return nil
	})
	return out, err
}

// matchAll reports whether every word is in hay, or (for a multi-word
// query that names no listing word for word) whether any is.
func matchAll(hay string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}

func (k *Keeper) qService(q module.Query, in module.Request) (any, error) {
	l, err := k.listing(q.State, in.PathValue("id"))
	if err != nil {
		return nil, err
	}
	rep, err := k.reputation(q.State, l.ProviderAddr(), q.Time.Unix())
	if err != nil {
		return nil, err
	}
	out := ServiceDetail{ServiceView: ServiceOf(l, q.Time.Unix()), Reputation: rep, OpenBids: []BidView{}, Height: q.Height}
	if out.Serving, err = k.serving(q.State, l.ProviderAddr()); err != nil {
		return nil, err
	}
	prefix := cat(openBidPrefix, []byte(l.ID), []byte{0})
	var ids []string
	err = q.State.Iterate(prefix, false, func(key, _ []byte) bool {
		ids = append(ids, string(key[len(prefix):]))
		return true
	})
	for _, id := range ids {
		if b, err := k.Bid(q.State, id); err == nil && b != nil {
			out.OpenBids = append(out.OpenBids, BidOf(b))
		}
	}
	return out, err
}

func (k *Keeper) qBids(q module.Query, in module.Request) (any, error) {
	f, err := parseFilter(in)
	if err != nil {
		return nil, err
	}
	out := BidList{Height: q.Height, Bids: []BidView{}}
	err = each(q.State, BidPrefix, func(b *Bid) error {
		if f.match(b.Provider, b.Customer, b.Service, "", BidStatusName(b.Status)) {
			out.Bids = append(out.Bids, BidOf(b))
		}
		return nil
	})
	return out, err
}

func (k *Keeper) qBid(q module.Query, in module.Request) (any, error) {
	b, err := k.Bid(q.State, in.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("%w: %q", ErrBidNotFound, in.PathValue("id"))
	}
	return BidOf(b), nil
}

func (k *Keeper) qAgreements(q module.Query, in module.Request) (any, error) {
	f, err := parseFilter(in)
	if err != nil {
		return nil, err
	}
	out := AgreementList{Height: q.Height, Agreements: []AgreementView{}}
	err = each(q.State, AgreementPrefix, func(a *Agreement) error {
		if f.match(a.Provider, a.Customer, a.Service, a.ID, AgreementStatusName(a.Status)) && (f.since == 0 || a.Start >= f.since) {
			out.Agreements = append(out.Agreements, AgreementOf(a, q.Time.Unix()))
		}
		return nil
	})
	return out, err
}

func (k *Keeper) qAgreement(q module.Query, in module.Request) (any, error) {
	a, err := k.Agreement(q.State, in.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("%w: %q", ErrAgreementNotFound, in.PathValue("id"))
	}
	out := AgreementOf(a, q.Time.Unix())
	out.Payouts = []PayoutView{}
	err = each(q.State, PayoutPrefix, func(p *Payout) error {
		if p.Agreement == a.ID {
			out.Payouts = append(out.Payouts, PayoutOf(p))
		}
		return nil
	})
	return out, err
}

func (k *Keeper) qPayouts(q module.Query, in module.Request) (any, error) {
	f, err := parseFilter(in)
	if err != nil {
		return nil, err
	}
	out := PayoutList{Height: q.Height, Payouts: []PayoutView{}}
	err = each(q.State, PayoutPrefix, func(p *Payout) error {
		if f.match(p.Provider, p.Customer, p.Service, p.Agreement, PayoutStatusName(p.Status)) && p.At >= f.since {
			out.Payouts = append(out.Payouts, PayoutOf(p))
		}
		return nil
	})
	return out, err
}

func (k *Keeper) qPayout(q module.Query, in module.Request) (any, error) {
	p, err := k.Payout(q.State, in.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%w: %q", ErrPayoutNotFound, in.PathValue("id"))
	}
	return PayoutOf(p), nil
}

func (k *Keeper) qRatings(q module.Query, in module.Request) (any, error) {
	f, err := parseFilter(in)
	if err != nil {
		return nil, err
	}
	out := RatingList{Height: q.Height, Ratings: []RatingView{}}
	err = each(q.State, RatingPrefix, func(r *Rating) error {
		if f.match(r.Provider, r.Customer, r.Service, r.Agreement, "") {
			v := RatingView{Agreement: r.Agreement, Service: r.Service, Provider: addr(r.Provider), Customer: addr(r.Customer),
				Stars: r.Stars, Review: r.Review, Height: r.Height}
			if len(r.Job) > 0 {
				v.JobID = hex.EncodeToString(r.Job)
			}
			out.Ratings = append(out.Ratings, v)
		}
		return nil
	})
	return out, err
}

func (k *Keeper) qProvider(q module.Query, in module.Request) (any, error) {
	a, err := address.Parse(in.PathValue("address"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errs.ErrInvalidAddress, err)
	}
	f, err := k.Facts(q.State, a)
	if err != nil {
		return nil, err
	}
	m, err := k.miners.Get(q.State, a)
	if err != nil {
		return nil, err
	}
	out := ProviderView{Address: a, Reputation: Score(f, m, q.Time.Unix()), Services: []ServiceView{}, Height: q.Height,
		Facts: FactsView{Listings: f.Listings, Agreements: f.Agreements, Delivered: f.Delivered, Failed: f.Failed, Released: f.Released,
			Revenue: f.Revenue, Disputes: f.Disputes, DisputesLost: f.DisputesLost, Ratings: f.Ratings}}
	if f.Ratings > 0 {
		out.Facts.AvgRating = float64(f.RatingsSum) / float64(f.Ratings)
	}
	if m != nil {
		st := "active"
		if m.Status != 1 {
			st = "unbonding"
		}
		out.Miner = &MinerFacts{Status: st, Stake: m.Stake, JobsSettled: m.JobsSettled, LastHeartbeat: time.Unix(m.LastHeartbeat, 0).UTC(),
			Models: m.Caps.Models, GPU: m.Caps.GPU}
	}
	if out.Miners, err = k.NamedMiners(q.State, a); err != nil {
		return nil, err
	}
	if out.Miners == nil {
		out.Miners = []MinerLink{}
	}
	if out.Serving, err = k.serving(q.State, a); err != nil {
		return nil, err
	}
	prefix := cat(providerPrefix, a[:])
	var ids []string
	err = q.State.Iterate(prefix, false, func(key, _ []byte) bool {
		ids = append(ids, string(key[len(prefix):]))
		return true
	})
	for _, id := range ids {
		if l, err := k.Listing(q.State, id); err == nil && l != nil {
			out.Services = append(out.Services, ServiceOf(l, q.Time.Unix()))
		}
	}
	return out, err
}

func (k *Keeper) qJob(q module.Query, in module.Request) (any, error) {
	id, err := jobs.ParseID(in.PathValue("id"))
	if err != nil {
		return nil, err
	}
	agr, err := q.State.Get(keyBound(id))
	if err != nil {
		return nil, err
	}
	if agr == nil {
		return nil, fmt.Errorf("%w: job %x runs under no agreement", ErrAgreementNotFound, id)
	}
	a, err := k.Agreement(q.State, string(agr))
	if err != nil || a == nil {
		return nil, err
	}
	pend, err := q.State.Get(keyPending(id))
	return JobBinding{JobID: hex.EncodeToString(id), Agreement: a.ID, Service: a.Service, Pending: pend != nil}, err
}

// Typed client functions over a node's REST API.

// QueryParams fetches the module's parameters.
func QueryParams(ctx context.Context, g module.Getter) (Params, error) {
	var out Params
	return out, g.GetJSON(ctx, "/api/v1/market/params", &out)
}

// ServiceFilter selects listings.
type ServiceFilter struct {
	Type, Query, GPU, Model, Status string
	Provider                        *address.Address
	MinPrice, MaxPrice              coin.Amount
	MinMemoryMB                     uint64
	AvailableNow, All               bool
}

func (f ServiceFilter) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("type", f.Type)
	set("q", f.Query)
	set("gpu", f.GPU)
	set("model", f.Model)
	set("status", f.Status)
	if f.Provider != nil {
		v.Set("provider", f.Provider.String())
	}
	if f.MinPrice > 0 {
		v.Set("min_price", f.MinPrice.String())
	}
	if f.MaxPrice > 0 {
		v.Set("max_price", f.MaxPrice.String())
	}
	if f.MinMemoryMB > 0 {
		v.Set("min_memory_mb", strconv.FormatUint(f.MinMemoryMB, 10))
	}
	if f.AvailableNow {
		v.Set("available", "now")
	}
	if f.All {
		v.Set("all", "1")
	}
	return v
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// QueryServices lists listings (closed ones only with All or a status).
func QueryServices(ctx context.Context, g module.Getter, f ServiceFilter) (ServiceList, error) {
	var out ServiceList
	return out, g.GetJSON(ctx, withQuery("/api/v1/market/services", f.values()), &out)
}

// QueryService fetches a listing with its provider's reputation and open bids.
func QueryService(ctx context.Context, g module.Getter, id string) (ServiceDetail, error) {
	var out ServiceDetail
	if !ValidID(id) {
		return out, fmt.Errorf("%w: %q is not a service id", ErrServiceNotFound, id)
	}
	return out, g.GetJSON(ctx, "/api/v1/market/services/"+id, &out)
}

// Filter selects bids, agreements, payouts and ratings.
type Filter struct {
	Provider, Customer         *address.Address
	Service, Agreement, Status string
	Since                      time.Time
}

func (f Filter) values() url.Values {
	v := url.Values{}
	if f.Provider != nil {
		v.Set("provider", f.Provider.String())
	}
	if f.Customer != nil {
		v.Set("customer", f.Customer.String())
	}
	for k, s := range map[string]string{"service": f.Service, "agreement": f.Agreement, "status": f.Status} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !f.Since.IsZero() {
		v.Set("since", strconv.FormatInt(f.Since.Unix(), 10))
	}
	return v
}

// QueryBids lists bids.
func QueryBids(ctx context.Context, g module.Getter, f Filter) (BidList, error) {
	var out BidList
	return out, g.GetJSON(ctx, withQuery("/api/v1/market/bids", f.values()), &out)
}

// QueryBid fetches one bid.
func QueryBid(ctx context.Context, g module.Getter, id string) (BidView, error) {
	var out BidView
	return out, g.GetJSON(ctx, "/api/v1/market/bids/"+url.PathEscape(id), &out)
}

// QueryAgreements lists agreements.
func QueryAgreements(ctx context.Context, g module.Getter, f Filter) (AgreementList, error) {
	var out AgreementList
	return out, g.GetJSON(ctx, withQuery("/api/v1/market/agreements", f.values()), &out)
}

// QueryAgreement fetches an agreement with its payouts.
func QueryAgreement(ctx context.Context, g module.Getter, id string) (AgreementView, error) {
	var out AgreementView
	return out, g.GetJSON(ctx, "/api/v1/market/agreements/"+url.PathEscape(id), &out)
}

// QueryPayouts lists payouts.
func QueryPayouts(ctx context.Context, g module.Getter, f Filter) (PayoutList, error) {
	var out PayoutList
	return out, g.GetJSON(ctx, withQuery("/api/v1/market/payouts", f.values()), &out)
}

// QueryPayout fetches one payout.
func QueryPayout(ctx context.Context, g module.Getter, id string) (PayoutView, error) {
	var out PayoutView
	return out, g.GetJSON(ctx, "/api/v1/market/payouts/"+url.PathEscape(id), &out)
}

// QueryRatings lists ratings.
func QueryRatings(ctx context.Context, g module.Getter, f Filter) (RatingList, error) {
	var out RatingList
	return out, g.GetJSON(ctx, withQuery("/api/v1/market/ratings", f.values()), &out)
}

// QueryProvider fetches a provider's facts and reputation.
func QueryProvider(ctx context.Context, g module.Getter, a address.Address) (ProviderView, error) {
	var out ProviderView
	return out, g.GetJSON(ctx, "/api/v1/market/providers/"+a.String(), &out)
}

// MaxReputations bounds the providers one reputations query names.
const MaxReputations = 256

// ProviderReputation is one provider's score with its parts.
type ProviderReputation struct {
	Provider   address.Address `json:"provider"`
	Reputation Reputation      `json:"reputation"`
}

// ReputationList is GET /api/v1/market/reputations: a coordinator's
// scheduler reads its connected miners' scores in one request.
type ReputationList struct {
	Height      int64                `json:"height"`
	Reputations []ProviderReputation `json:"reputations"`
}

func (k *Keeper) qReputations(q module.Query, in module.Request) (any, error) {
	list := strings.Split(in.Param("providers"), ",")
	if len(list) > MaxReputations {
		return nil, fmt.Errorf("%w: at most %d providers at once", errs.ErrInvalidAddress, MaxReputations)
	}
	out := ReputationList{Height: q.Height, Reputations: []ProviderReputation{}}
	for _, s := range list {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := address.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errs.ErrInvalidAddress, err)
		}
		r, err := k.reputation(q.State, a, q.Time.Unix())
		if err != nil {
			return nil, err
		}
		out.Reputations = append(out.Reputations, ProviderReputation{Provider: a, Reputation: r})
	}
	return out, nil
}

// QueryReputations fetches the reputation of each provider in as (at
// most MaxReputations).
func QueryReputations(ctx context.Context, g module.Getter, as []address.Address) (ReputationList, error) {
	var out ReputationList
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.String()
	}
	return out, g.GetJSON(ctx, withQuery("/api/v1/market/reputations", url.Values{"providers": {strings.Join(names, ",")}}), &out)
}

// QueryJob fetches the agreement a job runs under.
func QueryJob(ctx context.Context, g module.Getter, id string) (JobBinding, error) {
	var out JobBinding
	return out, g.GetJSON(ctx, "/api/v1/market/jobs/"+strings.TrimPrefix(id, "0x"), &out)
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	spec := func(s ListingSpec) map[string]any {
		out := map[string]any{"service_id": s.ID, "name": s.Name, "type": s.Type, "unit": s.Unit, "price": s.Price,
			"description": s.Description, "model": s.Model, "gpu": s.GPU, "gpu_memory_mb": s.GPUMemoryMB, "capacity": s.Capacity,
			"auto_accept": s.AutoAccept}
		if len(s.Params) > 0 {
			ps := map[string]string{}
			for _, p := range s.Params {
				ps[p.Key] = p.Value
			}
			out["parameters"] = ps
		}
		return out
	}
	switch msg.Type {
	case TypeCreate:
		var m MsgCreate
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return spec(m.Spec), nil
	case TypeCreateFor:
		var m MsgCreateFor
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		out := spec(m.Spec)
		out["provider"] = addrOf(m.Provider)
		return out, nil
	case TypeAddMiner, TypeRemoveMiner:
		var m MsgMiner
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"miner": addrOf(m.Miner)}, nil
	case TypeUpdate:
		var m MsgUpdate
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		out := map[string]any{"service_id": m.ID, "op": m.Op}
		if m.Op == OpReprice || m.Op == OpPricing {
			out["price"] = m.Price
		}
		if m.Op == OpPricing {
			out["price_min"], out["price_max"] = m.PriceMin, m.PriceMax
		}
		return out, nil
	case TypeBid:
		var m MsgBid
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"service_id": m.Service, "price": m.Price, "units": m.Units, "auto_accept": m.AutoAccept}, nil
	case TypeOrder:
		var m MsgOrder
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"type": m.Type, "model": m.Model, "max_price": m.MaxPrice, "units": m.Units, "min_score": m.MinScore}, nil
	case TypeWithdraw, TypeReject, TypeAccept, TypeClaim, TypeClose:
		var m MsgRef
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		key := "agreement_id"
		if slices.Contains([]string{TypeWithdraw, TypeReject, TypeAccept}, msg.Type) {
			key = "bid_id"
		}
		return map[string]any{key: m.ID}, nil
	case TypeSettle:
		var m MsgSettle
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"agreement_id": m.ID, "amount": m.Amount}, nil
	case TypeBind:
		var m MsgBind
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"agreement_id": m.ID, "job_id": hex.EncodeToString(m.Job)}, nil
	case TypeRate:
		var m MsgRate
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		out := map[string]any{"rating": m.Stars, "review": m.Review}
		if len(m.Job) > 0 {
			out["job_id"] = hex.EncodeToString(m.Job)
		} else {
			out["agreement_id"] = m.Agreement
		}
		if len(m.Customer) > 0 {
			out["customer"] = addrOf(m.Customer)
		}
		return out, nil
	case TypeDispute:
		var m MsgDispute
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"payout_id": m.ID, "reason": m.Reason}, nil
	case TypeResolve:
		var m MsgResolve
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"payout_id": m.ID, "refund": m.Refund}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}
