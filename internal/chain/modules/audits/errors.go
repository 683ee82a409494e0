package audits

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "audits" codespace. Every refusal changes nothing.
var (
	ErrParams          = errs.Register("audits", 2, "invalid_audits_params", "invalid audits parameters")
	ErrBond            = errs.Register("audits", 3, "verifier_bond_too_small", "a verifier's bond must reach min_bond")
	ErrTooManyVerifier = errs.Register("audits", 4, "too_many_verifiers", "the chain's limit of verifiers is reached")
	ErrNotVerifier     = errs.RegisterNotFound("audits", 5, "verifier_not_found", "not a registered verifier")
	ErrVerifierBusy    = errs.Register("audits", 6, "verifier_busy", "the verifier has open checks or claims under re-check")
	ErrCheckNotFound   = errs.RegisterNotFound("audits", 7, "check_not_found", "no spot check of this job")
	ErrNotAssigned     = errs.Register("audits", 8, "check_not_assigned", "the check is not assigned to the signer, or not awaiting its report")
	ErrLate            = errs.Register("audits", 9, "check_window_passed", "the check's window to report has passed")
	ErrInvalidReport   = errs.Register("audits", 10, "invalid_audit_report", "a report needs a 16-byte job id, evidence of at most 64 bytes and, for a fail, a reason of 1-280 UTF-8 bytes")
	ErrInvalidQuery    = errs.Register("audits", 11, "invalid_audits_query", "invalid audits query")
)
