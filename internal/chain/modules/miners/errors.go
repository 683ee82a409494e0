package miners

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "miners" codespace.
var (
	ErrNotRegistered = errs.Register("miners", 2, "miner_not_registered", "miner not registered")
	ErrRegistered    = errs.Register("miners", 3, "miner_already_registered", "miner already registered")
	ErrStakeTooLow   = errs.Register("miners", 4, "stake_too_low", "stake below the minimum")
	ErrCapabilities  = errs.Register("miners", 5, "invalid_capabilities", "invalid miner capabilities")
	ErrUnbonding     = errs.Register("miners", 6, "miner_unbonding", "miner is unbonding")
	ErrMinerNotFound = errs.RegisterNotFound("miners", 7, "miner_not_found", "miner not found")
	ErrProvider      = errs.Register("miners", 8, "invalid_provider", "invalid marketplace provider")
)
