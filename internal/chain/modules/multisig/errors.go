package multisig

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "multisig" codespace.
var (
	ErrInvalid     = errs.Register("multisig", 2, "invalid_multisig", "invalid multisig account")
	ErrExists      = errs.Register("multisig", 3, "multisig_exists", "a multisig account of this name exists")
	ErrNotFound    = errs.RegisterNotFound("multisig", 4, "multisig_not_found", "no multisig account of this name")
	ErrNotSigner   = errs.Register("multisig", 5, "not_multisig_signer", "signer is not a member of the multisig account")
	ErrNoProposal  = errs.RegisterNotFound("multisig", 6, "proposal_not_found", "no such proposal")
	ErrSigned      = errs.Register("multisig", 7, "already_signed", "the signer has already signed this proposal")
	ErrExpired     = errs.Register("multisig", 8, "proposal_expired", "the proposal has expired")
	ErrExecuted    = errs.Register("multisig", 9, "proposal_executed", "the proposal was already executed")
	ErrBadProposal = errs.Register("multisig", 10, "invalid_proposal", "the proposed message cannot be executed by a multisig account")
	ErrParams      = errs.Register("multisig", 11, "invalid_multisig_params", "invalid multisig parameters")
)
