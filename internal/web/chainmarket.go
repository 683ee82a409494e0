package web

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
)

// ChainMarket is Market over a node's market routes (/api/v1/market/...),
// read with the module's typed queries; *rpc.Client is such a node.
type ChainMarket struct {
	Node module.Getter
}

var _ Market = ChainMarket{}

// pricingModels maps the form's pricing models onto the module's units.
var pricingModels = map[string]string{
	"per_1k_tokens": market.UnitKTokens,
	"per_hour":      market.UnitHour,
	"per_job":       market.UnitJob,
}

// pricingModel is the form's name of a unit.
func pricingModel(unit string) string {
	for k, u := range pricingModels {
		if u == unit {
			return k
		}
	}
	return "per_" + unit
}

func listingOf(v market.ServiceView) Listing {
	l := Listing{ID: v.ID, Provider: v.Provider, Name: v.Name, Type: v.Type, Description: v.Description, PricingModel: pricingModel(v.Unit),
		Rate: v.Price, GPU: v.GPU, MemoryMB: v.GPUMemoryMB, Available: v.AvailableNow, Status: v.Status, Model: v.Model,
		CreatedHeight: v.Created, Capacity: v.Capacity, Live: v.Live}
	if v.ListedBy != v.Provider {
		lb := v.ListedBy
		l.ListedBy = &lb
	}
	for k, p := range v.Parameters {
		l.Params = append(l.Params, [2]string{k, p})
	}
	slices.SortFunc(l.Params, func(a, b [2]string) int { return cmp.Compare(a[0], b[0]) })
	return l
}

// Listings implements Market. A type the module does not know lists nothing.
func (m ChainMarket) Listings(ctx context.Context, f ListingFilter) ([]Listing, error) {
	sf := market.ServiceFilter{GPU: f.GPU, MinPrice: f.MinPrice, MaxPrice: f.MaxPrice, MinMemoryMB: f.MinMemoryMB, AvailableNow: f.AvailableNow}
	if f.Type != "" {
		if sf.Type = market.NormalizeType(f.Type); sf.Type == "" {
			return nil, nil
		}
	}
	list, err := market.QueryServices(ctx, m.Node, sf)
	if err != nil {
		return nil, err
	}
	out := make([]Listing, 0, len(list.Services))
	for _, v := range list.Services {
		out = append(out, listingOf(v))
	}
	return out, nil
}

// Listing implements Market: the listing with its provider's reputation
// and its parts, its open bids, and its ratings and reviews.
func (m ChainMarket) Listing(ctx context.Context, id string) (Listing, error) {
	if !market.ValidID(id) {
		return Listing{}, errf(ErrNotFound, "no listing %q", id)
	}
	d, err := market.QueryService(ctx, m.Node, id)
	if err != nil {
		return Listing{}, err
	}
	l := listingOf(d.ServiceView)
	rep := reputationOf(d.Reputation)
	l.Reputation = &rep
	for _, b := range d.OpenBids {
		l.OpenBids = append(l.OpenBids, bidOf(b))
	}
	pr, err := m.provider(ctx, d.Provider, market.Filter{Service: id})
	if err != nil {
		return Listing{}, err
	}
	l.Reputation.Facts, l.Ratings = pr.Reputation.Facts, pr.Ratings
	return l, nil
}

// Provider implements Market.
func (m ChainMarket) Provider(ctx context.Context, a address.Address) (ProviderRecord, error) {
	return m.provider(ctx, a, market.Filter{Provider: &a})
}

// provider reads a provider's reputation, facts and the ratings f selects.
func (m ChainMarket) provider(ctx context.Context, a address.Address, f market.Filter) (ProviderRecord, error) {
	p, err := market.QueryProvider(ctx, m.Node, a)
	if err != nil {
		return ProviderRecord{}, err
	}
	out := ProviderRecord{Reputation: reputationOf(p.Reputation)}
	out.Reputation.Facts = &ProviderFacts{Listings: p.Facts.Listings, Agreements: p.Facts.Agreements, Delivered: p.Facts.Delivered,
		Failed: p.Facts.Failed, Released: p.Facts.Released, Revenue: p.Facts.Revenue, Disputes: p.Facts.Disputes,
		DisputesLost: p.Facts.DisputesLost, Ratings: p.Facts.Ratings, AvgRating: p.Facts.AvgRating}
	rs, err := market.QueryRatings(ctx, m.Node, f)
	if err != nil {
		return ProviderRecord{}, err
	}
	slices.SortStableFunc(rs.Ratings, func(a, b market.RatingView) int { return cmp.Compare(b.Height, a.Height) }) // newest first
	for _, r := range rs.Ratings[:min(len(rs.Ratings), maxRatings)] {
		out.Ratings = append(out.Ratings, Rating{Stars: r.Stars, Review: r.Review, Customer: r.Customer, JobID: r.JobID,
			Agreement: r.Agreement, Height: r.Height})
	}
	return out, nil
}

func reputationOf(r market.Reputation) Reputation {
	return Reputation{Score: r.Score, RatingsPM: r.Ratings, ReliabilityPM: r.Reliability, DisputesPM: r.Disputes, UptimePM: r.Uptime, Why: r.Why}
}

func bidOf(b market.BidView) Bid {
	out := Bid{ID: b.ID, Listing: b.Service, Bidder: b.Customer, Provider: b.Provider, Price: b.Price, Units: b.Units, Total: b.Total,
		Deposit: b.Deposit, Status: b.Status, CreatedHeight: b.Created}
	if b.Expires != nil {
		out.Expires = *b.Expires
	}
	return out
}

// Bids implements Market: the bids owner placed and those on its listings.
func (m ChainMarket) Bids(ctx context.Context, owner address.Address) ([]Bid, error) {
	var out []Bid
	seen := map[string]bool{}
	for _, f := range []market.Filter{{Customer: &owner}, {Provider: &owner}} {
		list, err := market.QueryBids(ctx, m.Node, f)
		if err != nil {
			return nil, err
		}
		for _, b := range list.Bids {
			if !seen[b.ID] {
				seen[b.ID] = true
				out = append(out, bidOf(b))
			}
		}
	}
	return out, nil
}

// Agreements implements Market: those party is the customer or the
// provider of.
func (m ChainMarket) Agreements(ctx context.Context, party address.Address) ([]Agreement, error) {
	var out []Agreement
	seen := map[string]bool{}
	for _, f := range []market.Filter{{Customer: &party}, {Provider: &party}} {
		list, err := market.QueryAgreements(ctx, m.Node, f)
		if err != nil {
			return nil, err
		}
		for _, a := range list.Agreements {
			if seen[a.ID] {
				continue
			}
			seen[a.ID] = true
			ag := Agreement{ID: a.ID, Listing: a.Service, Provider: a.Provider, Customer: a.Customer, Rate: a.Price,
				PricingModel: pricingModel(a.Unit), Units: a.Units, Locked: a.Locked, Drawn: a.Drawn, Refunded: a.Refunded,
				Remaining: a.Remaining, Status: a.Status, Jobs: a.Jobs, Delivered: a.Delivered, Failed: a.Failed}
			if a.Start != nil {
				ag.Start = *a.Start
			}
			out = append(out, ag)
		}
	}
	return out, nil
}

// CreateListing implements Market: a market/create message signed by the
// signed-in wallet alone (the listing's provider is the signer).
func (m ChainMarket) CreateListing(ctx context.Context, sign WalletSigner, r ListingRequest) (string, error) {
	typ := market.NormalizeType(r.Type)
	unit, ok := pricingModels[r.PricingModel]
	if typ == "" || !ok {
		return "", errf(ErrBadRequest, "service type %q or pricing model %q is not one of the market's", r.Type, r.PricingModel)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return sign.SignAndSubmit(ctx, market.NewCreateMsg(market.ListingSpec{Name: r.Name, Type: typ, Unit: unit, Price: r.Rate,
		Description: r.Description}))
}
