package jobs

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "jobs" codespace.
var (
	ErrInvalidJob      = errs.Register("jobs", 2, "invalid_job", "invalid job")
	ErrJobExists       = errs.Register("jobs", 3, "job_exists", "job id already used")
	ErrJobNotFound     = errs.RegisterNotFound("jobs", 4, "job_not_found", "job not found")
	ErrNotCoordinator  = errs.Register("jobs", 5, "not_job_coordinator", "signer is not the job's coordinator")
	ErrJobState        = errs.Register("jobs", 6, "job_wrong_state", "job is not in a state that allows this")
	ErrMinerIneligible = errs.Register("jobs", 7, "miner_ineligible", "miner cannot take this job")
	ErrReceiptInvalid  = errs.Register("jobs", 8, "receipt_invalid", "receipt rejected")
	ErrDepositLow      = errs.Register("jobs", 9, "insufficient_deposit", "deposit does not cover the job")
	ErrTTL             = errs.Register("jobs", 10, "invalid_ttl", "TTL out of range")
	ErrNotCustomer     = errs.Register("jobs", 11, "not_job_customer", "signer is not the job's customer")
	ErrInvalidID       = errs.Register("jobs", 12, "invalid_id", "invalid id")
	ErrBatch           = errs.Register("jobs", 13, "invalid_batch", "invalid batch")
)
