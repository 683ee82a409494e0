package pools

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "pools" codespace.
var (
	ErrName      = errs.Register("pools", 2, "invalid_pool_name", "pool name must be 1-32 characters of a-z, 0-9, - and _")
	ErrFee       = errs.Register("pools", 3, "pool_fee_too_high", "pool fee above 100%")
	ErrExists    = errs.Register("pools", 4, "pool_exists", "a pool with this name exists")
	ErrNotFound  = errs.RegisterNotFound("pools", 5, "pool_not_found", "pool not found")
	ErrInPool    = errs.Register("pools", 6, "already_in_pool", "the miner is already in a pool")
	ErrNotInPool = errs.Register("pools", 7, "not_in_pool", "the miner is in no pool")
	ErrNotAMiner = errs.Register("pools", 8, "not_a_miner", "only an active registered miner joins a pool")
)
