package web

import (
	"context"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/walletd"
)

// Market is the marketplace module's part of the pages: service listings
// (with their provider's reputation, open bids, ratings and reviews), bids
// and agreements on chain. ChainMarket implements it over a node's market
// routes; while Config.Market is nil the pages say plainly that this
// server reads no marketplace module, and show only the services the
// miners' registry offers.
type Market interface {
	Listings(ctx context.Context, f ListingFilter) ([]Listing, error)
	Listing(ctx context.Context, id string) (Listing, error) // an unknown id: an error for which IsNotFound holds
	Bids(ctx context.Context, owner address.Address) ([]Bid, error)
	Agreements(ctx context.Context, party address.Address) ([]Agreement, error)
	// Provider is a provider's (or miner's) reputation with its parts and
	// facts, and its newest ratings and reviews.
	Provider(ctx context.Context, a address.Address) (ProviderRecord, error)
	// CreateListing signs a listing with the signed-in wallet (sign holds
	// the session's wallet; it never signs for another) and returns the
	// transaction's hash.
	CreateListing(ctx context.Context, sign WalletSigner, l ListingRequest) (string, error)
}

// WalletSigner signs chain messages with the signed-in wallet only: the
// session's wallet and the password its owner typed into the form.
type WalletSigner interface {
	Address() address.Address
	SignAndSubmit(ctx context.Context, msg tx.Msg) (txHash string, err error)
}

// Submitter signs and submits a message with a wallet held by the wallet
// daemon; *walletd.Client and *walletd.Service are both one.
type Submitter interface {
	SignAndSubmit(ctx context.Context, name, password string, msg tx.Msg, fee coin.Amount) (walletd.Submitted, error)
}

var (
	_ Submitter = (*walletd.Client)(nil)
	_ Submitter = (*walletd.Service)(nil)
)

// sessionSigner is a WalletSigner bound to one session's wallet.
type sessionSigner struct {
	sess     *session
	password string
	submit   Submitter
}

func (s sessionSigner) Address() address.Address { return s.sess.Address }

func (s sessionSigner) SignAndSubmit(ctx context.Context, msg tx.Msg) (string, error) {
	sub, err := s.submit.SignAndSubmit(ctx, s.sess.Wallet, s.password, msg, 0)
	return sub.TxHash, err
}

// ListingFilter narrows Listings, as the marketplace's filter form does.
type ListingFilter struct {
	Type         string
	MinPrice     coin.Amount
	MaxPrice     coin.Amount // 0: no limit
	AvailableNow bool
	GPU          string
	MinMemoryMB  uint64
}

// Listing is a service on offer.
type Listing struct {
	ID           string          `json:"service_id"`
	Provider     address.Address `json:"provider"`
	Name         string          `json:"name"`
	Type         string          `json:"type"`
	Description  string          `json:"description"`
	PricingModel string          `json:"pricing_model"` // per_1k_tokens, per_hour
	Rate         coin.Amount     `json:"rate"`
	GPU          string          `json:"gpu"`
	MemoryMB     uint64          `json:"gpu_memory_mb"`
	Available    bool            `json:"available_now"`
	Created      time.Time       `json:"-"`
	// What the chain adds: status (active, paused, closed), the model, the
	// block it was listed at, capacity (0: unlimited) and live agreements,
	// who listed it when not the provider (a coordinator), parameters.
	Status        string           `json:"status"`
	Model         string           `json:"model,omitempty"`
	CreatedHeight int64            `json:"created_height"`
	Capacity      uint32           `json:"capacity"`
	Live          uint32           `json:"live_agreements"`
	ListedBy      *address.Address `json:"listed_by,omitempty"`
	Params        [][2]string      `json:"parameters,omitempty"`
	// Listing (one id) fills these: the provider's reputation with its
	// parts, the open bids, and the ratings and reviews, newest first.
	Reputation *Reputation `json:"-"`
	OpenBids   []Bid       `json:"-"`
	Ratings    []Rating    `json:"-"`
}

// Reputation is a provider's score out of 100 and its parts, each per
// mille before weighting (ratings 40%, reliability 30%, disputes 20%,
// uptime 10%), as the market module computes it from chain facts.
type Reputation struct {
	Score                                          uint32
	RatingsPM, ReliabilityPM, DisputesPM, UptimePM uint32
	Why                                            string
	Facts                                          *ProviderFacts
}

// ProviderFacts are the chain's facts the reputation is computed from.
type ProviderFacts struct {
	Listings, Agreements, Delivered, Failed, Released uint32
	Revenue                                           coin.Amount
	Disputes, DisputesLost, Ratings                   uint32
	AvgRating                                         float64
}

// ProviderRecord is what the market module says of a provider.
type ProviderRecord struct {
	Reputation Reputation
	Ratings    []Rating // newest first, at most maxRatings
}

// maxRatings is how many ratings a page shows.
const maxRatings = 50

// Rating is a customer's rating (1-5 stars) and review of a delivered job
// or agreement.
type Rating struct {
	Stars     uint8
	Review    string
	Customer  address.Address
	JobID     string
	Agreement string
	Height    int64
}

// ListingRequest is the "Become a Provider" form.
type ListingRequest struct {
	Name, Type, Description, PricingModel string
	Rate                                  coin.Amount
}

// Bid is an offer on a listing: Price per unit for Units units, Deposit
// held while it is open.
type Bid struct {
	ID, Listing           string
	Bidder, Provider      address.Address
	Price, Total, Deposit coin.Amount
	Units                 uint64
	Status                string
	CreatedHeight         int64
	Expires               time.Time
}

// Agreement is an accepted bid: the customer's payment locked, paid out
// (drawn) as jobs are delivered or the lease runs, the rest refunded.
type Agreement struct {
	ID, Listing                        string
	Provider, Customer                 address.Address
	Rate                               coin.Amount
	PricingModel                       string
	Units                              uint64
	Locked, Drawn, Refunded, Remaining coin.Amount
	Status                             string
	Start                              time.Time
	Jobs, Delivered, Failed            uint32
}
