package web

import (
	"context"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/walletd"
)

// Market is the marketplace module's part of the pages: service listings,
// bids and agreements on chain. The module is not on this chain yet; while
// Config.Market is nil the pages say so plainly and show the services the
// miners' registry offers instead. When the module lands, an adapter over
// its typed queries (market.QueryListings … over *rpc.Client) and its
// message builders signed through the session's wallet implements this.
type Market interface {
	Listings(ctx context.Context, f ListingFilter) ([]Listing, error)
	Listing(ctx context.Context, id string) (Listing, error) // an unknown id: an error for which IsNotFound holds
	Bids(ctx context.Context, owner address.Address) ([]Bid, error)
	Agreements(ctx context.Context, party address.Address) ([]Agreement, error)
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
	ID           string
	Provider     address.Address
	Name         string
	Type         string
	Description  string
	PricingModel string // per_1k_tokens, per_hour
	Rate         coin.Amount
	GPU          string
	MemoryMB     uint64
	Available    bool
	Created      time.Time
}

// ListingRequest is the "Become a Provider" form.
type ListingRequest struct {
	Name, Type, Description, PricingModel string
	Rate                                  coin.Amount
}

// Bid is an offer on a listing.
type Bid struct {
	ID, Listing string
	Bidder      address.Address
	Price       coin.Amount
	Status      string
}

// Agreement is an accepted bid: a lease drawn per block.
type Agreement struct {
	ID, Listing        string
	Provider, Customer address.Address
	Rate               coin.Amount
	Status             string
}
