package rentals

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "rentals" codespace. Every refusal changes nothing.
var (
	ErrParams          = errs.Register("rentals", 2, "invalid_rental_params", "invalid rentals parameters")
	ErrServiceNotFound = errs.RegisterNotFound("rentals", 3, "rental_service_not_found", "no such listing")
	ErrNotRentable     = errs.Register("rentals", 4, "not_rentable", "only an active gpu-rental or gpu-compute listing priced by the hour can be rented")
	ErrOwnService      = errs.Register("rentals", 5, "rent_own_service", "a provider cannot rent its own listing")
	ErrNoMiner         = errs.Register("rentals", 6, "provider_not_mining", "the listing's provider runs no active miner whose capacity could be leased")
	ErrDuration        = errs.Register("rentals", 7, "invalid_rental_duration", "rental duration out of range")
	ErrUnavailable     = errs.Register("rentals", 8, "outside_availability", "the lease would run outside the listing's availability window")
	ErrNoCapacity      = errs.Register("rentals", 9, "rental_no_capacity", "the listing's capacity is taken")
	ErrTooMany         = errs.Register("rentals", 10, "too_many_leases", "the chain's limit of active leases is reached")
	ErrEscrowShort     = errs.Register("rentals", 11, "escrow_too_small", "the rental is longer than the escrow offered covers")
	ErrNotFound        = errs.RegisterNotFound("rentals", 12, "lease_not_found", "lease not found")
	ErrNotActive       = errs.Register("rentals", 13, "lease_not_active", "the lease has closed")
	ErrNotParty        = errs.Register("rentals", 14, "not_lease_party", "only the lease's customer (or, to end it, its provider) may do this")
	ErrInvalidQuery    = errs.Register("rentals", 15, "invalid_rental_query", "invalid rentals query")
)
