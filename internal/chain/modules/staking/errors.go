package staking

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "staking" codespace.
var (
	ErrAmount          = errs.Register("staking", 2, "invalid_stake_amount", "stake amount must be positive and at least the minimum")
	ErrUnknownOperator = errs.RegisterNotFound("staking", 3, "operator_unknown", "no miner or validator at this address")
	ErrInactive        = errs.Register("staking", 4, "operator_inactive", "the miner is unbonding or deregistered")
	ErrInDispute       = errs.Register("staking", 5, "operator_in_dispute", "the operator's stake is frozen by an open dispute")
	ErrExceedsBalance  = errs.Register("staking", 6, "stake_exceeds_balance", "stake exceeds the balance")
	ErrExceedsStake    = errs.Register("staking", 7, "unstake_exceeds_stake", "unstake exceeds what is staked")
	ErrCommission      = errs.Register("staking", 8, "invalid_commission", "commission out of range")
	ErrNotOperator     = errs.Register("staking", 9, "not_an_operator", "signer is not an active miner or validator")
	ErrParams          = errs.Register("staking", 10, "invalid_staking_params", "invalid staking parameters")
)
