package coordinators

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "coordinators" codespace.
var (
	ErrURL      = errs.Register("coordinators", 2, "invalid_coordinator_url", "a coordinator's public URL must be an absolute http or https URL of at most 200 characters, without user, query, fragment or trailing slash, in canonical form")
	ErrRegion   = errs.Register("coordinators", 3, "invalid_coordinator_region", "a region must be 1-32 characters of a-z, 0-9 and '-'")
	ErrName     = errs.Register("coordinators", 4, "invalid_coordinator_name", "a coordinator name must be at most 64 characters of A-Z, a-z, 0-9, space, '.', '-' and '_'")
	ErrNotFound = errs.RegisterNotFound("coordinators", 5, "coordinator_not_found", "no coordinator announced at that address (and URL)")
	ErrTooMany  = errs.Register("coordinators", 6, "too_many_coordinator_endpoints", "one key announces at most 16 coordinator URLs; retire one first")
	ErrAddress  = errs.Register("coordinators", 7, "invalid_coordinator_address", "invalid coordinator address")
	ErrFilter   = errs.Register("coordinators", 8, "invalid_coordinators_filter", "invalid coordinator list filter")
)
