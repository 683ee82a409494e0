package coordinator

import (
	"context"
	"net/http"

	"github.com/aitbc/aitbc/internal/httpx"
)

// allowListing answers 429 rate_limited (with Retry-After) and returns
// false when tenant is over its allowance of listings the coordinator
// signs and pays the fee for (Limits.ListingRate).
//
// The limit is the coordinator's, not the chain's: what it protects is the
// fee the coordinator fronts and its signing key's nonce stream, which are
// the marketplace's, while the chain already makes every listing cost its
// fee (market.ListingFee from the tenant's deposit) and cannot tell a
// tenant's listing from the provider's own. The coordinators of one
// marketplace share its key, so on a shared store the bucket is one row
// in the database that all of them take from (as the write rate's): a
// tenant cannot get N times its allowance by spreading its listings over
// N coordinators. When the database cannot be asked, this coordinator's
// own bucket decides.
func (s *Service) allowListing(ctx context.Context, w http.ResponseWriter, tenant string) bool {
	what := "too many listings registered for tenant " + tenant
	if tb, ok := s.cfg.Store.(tokenBuckets); ok && s.cfg.Limits.ListingRate > 0 {
		ok, wait, err := tb.TakeToken(ctx, "listing/"+tenant, s.cfg.Limits.ListingRate, s.cfg.Limits.ListingBurst)
		switch {
		case err != nil:
			s.log.Warn("shared listing rate unavailable; this coordinator's own applies", "err", err)
		case !ok:
			httpx.WriteRateLimited(w, wait, what)
			return false
		default:
			return true
		}
	}
	if s.guard.listings == nil {
		return true
	}
	return allow(w, s.guard.listings, tenant, what)
}
