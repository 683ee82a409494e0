package rewards

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "rewards" codespace.
var (
	ErrParams = errs.Register("rewards", 2, "invalid_reward_params", "invalid reward parameters")
)
