package bank

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "bank" codespace.
var (
	ErrInsufficientFunds = errs.Register("bank", 2, "insufficient_funds", "insufficient funds")
	ErrZeroAmount        = errs.Register("bank", 3, "invalid_amount", "amount must be positive")
	ErrOverflow          = errs.Register("bank", 4, "balance_overflow", "balance overflow")
	ErrModuleAccount     = errs.Register("bank", 5, "module_account_recipient", "module accounts cannot receive transfers")
	ErrZeroAddress       = errs.Register("bank", 6, "zero_address_recipient", "the all-zero address cannot receive transfers")
)

// Errors of the bank's other denominations.
var (
	ErrUnknownDenom = errs.Register("bank", 7, "unknown_denom", "unknown denomination")
	ErrNotMinter    = errs.Register("bank", 8, "not_denom_minter", "module may not mint or burn this denomination")
)
