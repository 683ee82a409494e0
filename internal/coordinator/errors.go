package coordinator

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Errors of the coordinator; test them with errors.Is, on the Service and
// the Client alike. Where a refusal means the same as a chain error (a
// job id already used, a deposit too small, a TTL out of range, no such
// job), the chain's sentinel is used, so that the code is one constant
// across the system.
var (
	ErrInvalidRequest      = errors.New("coordinator: invalid request")
	ErrEmptyPrompt         = errors.New("coordinator: empty prompt")
	ErrPromptTooLong       = errors.New("coordinator: prompt too long")
	ErrInvalidMaxTokens    = errors.New("coordinator: invalid max_tokens")
	ErrInvalidTTL          = jobs.ErrTTL
	ErrMaxPriceTooLow      = errors.New("coordinator: max price too low")
	ErrInvalidID           = errors.New("coordinator: invalid job id")
	ErrWrongCoordinator    = errors.New("coordinator: job names another coordinator")
	ErrEscrowMismatch      = errors.New("coordinator: escrow does not match the request")
	ErrUnsupportedJob      = errors.New("coordinator: unsupported job")
	ErrInvalidLimit        = errors.New("coordinator: invalid limit")
	ErrStaleSignature      = errors.New("coordinator: stale signature")
	ErrInvalidAddress      = errors.New("coordinator: invalid address")
	ErrUnauthorized        = errors.New("coordinator: missing or unknown API key")
	ErrInvalidSignature    = errors.New("coordinator: invalid signature")
	ErrInsufficientDeposit = jobs.ErrDepositLow
	ErrEscrowNotFound      = errors.New("coordinator: escrow not found")
	ErrPaymentNotConfirmed = errors.New("coordinator: payment not confirmed on chain")
	ErrModelNotServed      = errors.New("coordinator: model not served")
	ErrJobNotFound         = jobs.ErrJobNotFound
	ErrAllocationNotFound  = errors.New("coordinator: allocation not found")
	ErrJobExists           = jobs.ErrJobExists
	ErrAllocationExists    = errors.New("coordinator: allocation exists")
	ErrNoCapacity          = errors.New("coordinator: no capacity")
	ErrNoMiners            = errors.New("coordinator: no miners")
	ErrJobFailed           = errors.New("coordinator: job failed")
	ErrJobExpired          = errors.New("coordinator: job expired")
	ErrJobLost             = errors.New("coordinator: job stream lost")
	ErrStreamDiverged      = errors.New("coordinator: restarted job's text diverged from what was sent")
	ErrBodyTooLarge        = httpx.ErrBodyTooLarge
	ErrReplayed            = errors.New("coordinator: replayed registration")
	ErrQuotaExceeded       = errors.New("coordinator: tenant quota exceeded")
	ErrOverloaded          = errors.New("coordinator: overloaded")
	ErrKeyNotFound         = errors.New("coordinator: API key not found")
	ErrOperatorDisabled    = errors.New("coordinator: operator routes disabled")
	ErrNotOperator         = errors.New("coordinator: not the operator")
)

// errorCode ties a sentinel to its HTTP status and stable code.
type errorCode struct {
	err    error
	status int
	code   string
}

// errorCodes is the one table the API maps errors with and the Client maps
// codes back with.
var errorCodes = []errorCode{
	{ErrBodyTooLarge, http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge},
	{ErrReplayed, http.StatusConflict, "replayed_registration"},
	{ErrQuotaExceeded, http.StatusTooManyRequests, "quota_exceeded"},
	{ErrOverloaded, http.StatusServiceUnavailable, httpx.CodeOverloaded},
	{ErrKeyNotFound, http.StatusNotFound, "key_not_found"},
	{ErrInvalidRequest, http.StatusBadRequest, "invalid_request"},
	{ErrEmptyPrompt, http.StatusBadRequest, "empty_prompt"},
	{ErrPromptTooLong, http.StatusBadRequest, "prompt_too_long"},
	{ErrInvalidMaxTokens, http.StatusBadRequest, "invalid_max_tokens"},
	{ErrInvalidTTL, http.StatusBadRequest, jobs.ErrTTL.Name},
	{ErrMaxPriceTooLow, http.StatusBadRequest, "max_price_too_low"},
	{ErrInvalidID, http.StatusBadRequest, "invalid_id"},
	{ErrWrongCoordinator, http.StatusBadRequest, "wrong_coordinator"},
	{ErrEscrowMismatch, http.StatusBadRequest, "escrow_mismatch"},
	{ErrUnsupportedJob, http.StatusBadRequest, "unsupported_job"},
	{ErrInvalidLimit, http.StatusBadRequest, "invalid_limit"},
	{ErrStaleSignature, http.StatusBadRequest, "stale_signature"},
	{ErrInvalidAddress, http.StatusBadRequest, "invalid_address"},
	{ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{ErrNotOperator, http.StatusUnauthorized, "not_operator"},
	{ErrOperatorDisabled, http.StatusForbidden, "operator_disabled"},
	{ErrInvalidSignature, http.StatusUnauthorized, "invalid_signature"},
	{ErrInsufficientDeposit, http.StatusPaymentRequired, jobs.ErrDepositLow.Name},
	{ErrEscrowNotFound, http.StatusPaymentRequired, "escrow_not_found"},
	{ErrPaymentNotConfirmed, http.StatusPaymentRequired, lifecycle.CodePaymentNotConfirmed},
	{ErrModelNotServed, http.StatusNotFound, "model_not_served"},
	{ErrJobNotFound, http.StatusNotFound, jobs.ErrJobNotFound.Name},
	{ErrAllocationNotFound, http.StatusNotFound, "allocation_not_found"},
	{ErrJobExists, http.StatusConflict, jobs.ErrJobExists.Name},
	{ErrAllocationExists, http.StatusConflict, "allocation_exists"},
	{ErrNoCapacity, http.StatusConflict, "no_capacity"},
	{ErrNoMiners, http.StatusServiceUnavailable, "no_miners"},
	{ErrJobFailed, http.StatusBadGateway, "job_failed"},
	{ErrJobExpired, http.StatusBadGateway, "job_expired"},
	{ErrJobLost, http.StatusBadGateway, "job_lost"},
	{ErrStreamDiverged, http.StatusBadGateway, "stream_diverged"},
	// files.go
	{ErrFilesDisabled, http.StatusServiceUnavailable, "files_disabled"},
	{ErrFileNotFound, http.StatusNotFound, "file_not_found"},
	{ErrFileTooLarge, http.StatusRequestEntityTooLarge, "file_too_large"},
	{ErrFileInvalid, http.StatusBadRequest, "invalid_file"},
	{ErrUploadOffset, http.StatusConflict, "upload_offset_mismatch"},
	{ErrNoFittingHardware, http.StatusConflict, "no_fitting_hardware"},
	{ErrNoVision, http.StatusConflict, "vision_not_served"}, // visionparts.go
	// rentals.go
	{ErrLeaseNotFound, http.StatusNotFound, "lease_not_found"},
	{ErrNotLeaseHolder, http.StatusForbidden, "not_lease_customer"},
	{ErrLeaseClosed, http.StatusConflict, "lease_not_active"},
	// audits.go
	{ErrNotAssignedVerifier, http.StatusForbidden, "not_assigned_verifier"},
	{ErrAuditsUnavailable, http.StatusServiceUnavailable, "audits_unavailable"},
	// private.go
	{ErrPrivateUnavailable, http.StatusBadRequest, "private_unavailable"},
}

// Error is a coordinator error as the API shows it: the HTTP status and
// stable code of its sentinel (which errors.Is finds) and a message for
// people.
type Error struct {
	Status  int
	Code    string
	Message string
	err     error
}

// Error returns the message for people.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.err }

// Is matches coordinator errors by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// errf returns sentinel's error with a message of its own.
func errf(sentinel error, format string, a ...any) *Error {
	status, code := HTTPStatus(sentinel)
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...), err: sentinel}
}

// HTTPStatus returns the HTTP status and error code for err: a sentinel
// of the table above (or an error wrapping one); anything else is a 500
// "internal".
func HTTPStatus(err error) (int, string) {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.status, c.code
		}
	}
	return http.StatusInternalServerError, "internal"
}

// remoteError is an error answer from a coordinator, rebuilt by the
// Client: its message is the server's, and errors.Is finds the sentinel of
// its code as well as the *httpx.APIError.
type remoteError struct {
	api      *httpx.APIError
	sentinel error
}

func (e *remoteError) Error() string { return e.api.Error() }

func (e *remoteError) Unwrap() []error {
	if e.sentinel == nil {
		return []error{e.api}
	}
	return []error{e.sentinel, e.api}
}

// fromAPIError maps an error body back to its sentinel.
func fromAPIError(api *httpx.APIError) error {
	for _, c := range errorCodes {
		if c.code == api.Code {
			return &remoteError{api: api, sentinel: c.err}
		}
	}
	return &remoteError{api: api}
}
