package walletd

import (
	"errors"
	"net/http"

	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
)

// Errors of the wallet daemon (the keystore's errors pass through as they
// are); test them with errors.Is, on the Service and the Client alike.
var (
	ErrLocked          = errors.New("walletd: wallet is locked")
	ErrNoWallet        = errors.New("walletd: no wallet selected")
	ErrInvalidRequest  = errors.New("walletd: invalid request")
	ErrInvalidAmount   = errors.New("walletd: invalid amount")
	ErrInvalidAddress  = errors.New("walletd: invalid address")
	ErrInvalidTimeout  = errors.New("walletd: invalid unlock timeout")
	ErrNoNode          = errors.New("walletd: no chain node configured")
	ErrNodeUnavailable = errors.New("walletd: chain node unavailable")
	ErrUnauthorized    = errors.New("walletd: missing or wrong API key")
	ErrOutOfScope      = errors.New("walletd: wallet outside the API key's scope")
	ErrServiceWallet   = errors.New("walletd: service wallet")
	ErrAdminOnly       = errors.New("walletd: needs the admin API key")
	ErrKeyNotFound     = errors.New("walletd: no such API key")
	ErrKeyLimit        = errors.New("walletd: too many API keys")
)

// errorCode ties a sentinel to its HTTP status and stable code.
type errorCode struct {
	err    error
	status int
	code   string
}

// errorCodes is the one table the server maps errors with and the client
// maps codes back with. Order matters only for errors that wrap two
// sentinels (none do).
var errorCodes = []errorCode{
	{httpx.ErrBodyTooLarge, http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge},
	{ErrTooManyAttempts, http.StatusTooManyRequests, "too_many_attempts"},
	{ErrBusy, http.StatusServiceUnavailable, "busy"},
	{ErrWeakPassword, http.StatusBadRequest, "password_too_weak"},
	{keystore.ErrWrongPassword, http.StatusForbidden, "wrong_password"},
	{keystore.ErrNotFound, http.StatusNotFound, "wallet_not_found"},
	{keystore.ErrExists, http.StatusConflict, "wallet_exists"},
	{keystore.ErrInvalidName, http.StatusBadRequest, "invalid_name"},
	{keystore.ErrInvalidMnemonic, http.StatusBadRequest, "invalid_mnemonic"},
	{keystore.ErrEmptyPassword, http.StatusBadRequest, "password_required"},
	{keystore.ErrCorrupt, http.StatusInternalServerError, "keystore_corrupt"},
	{ErrLocked, http.StatusLocked, "wallet_locked"},
	{ErrNoWallet, http.StatusBadRequest, "wallet_required"},
	{ErrInvalidRequest, http.StatusBadRequest, "invalid_request"},
	{ErrInvalidAmount, http.StatusBadRequest, "invalid_amount"},
	{ErrInvalidAddress, http.StatusBadRequest, "invalid_address"},
	{ErrInvalidTimeout, http.StatusBadRequest, "invalid_timeout"},
	{ErrNoNode, http.StatusServiceUnavailable, "node_not_configured"},
	{ErrNodeUnavailable, http.StatusBadGateway, "node_unavailable"},
	{ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{ErrOutOfScope, http.StatusForbidden, "wallet_out_of_scope"},
	{ErrServiceWallet, http.StatusForbidden, "service_wallet"},
	{ErrAdminOnly, http.StatusForbidden, "admin_key_required"},
	{ErrKeyNotFound, http.StatusNotFound, "key_not_found"},
	{ErrKeyLimit, http.StatusConflict, "key_limit"},
}

// HTTPStatus returns the HTTP status and error code for err: a daemon or
// keystore sentinel maps through the table above; a chain rejection
// received from the node keeps the node's code (insufficient_funds,
// invalid_nonce, fee_too_low, ...) and its 4xx status; anything else is a
// 500 "internal".
func HTTPStatus(err error) (int, string) {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.status, c.code
		}
	}
	var api *httpx.APIError
	if errors.As(err, &api) {
		if api.Status >= 400 && api.Status < 500 {
			return api.Status, api.Code
		}
		return http.StatusBadGateway, api.Code
	}
	var ce *errs.Error
	if errors.As(err, &ce) {
		if ce == errs.ErrInternal {
			return http.StatusBadGateway, ce.Name
		}
		return http.StatusBadRequest, ce.Name
	}
	return http.StatusInternalServerError, "internal"
}

// remoteError is an error answer from the daemon, rebuilt on the client
// side: its message is the daemon's, and errors.Is finds the sentinel of
// its code (a daemon, keystore or chain error) as well as the APIError.
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

// fromAPIError maps a daemon error body back to its sentinel.
func fromAPIError(api *httpx.APIError) error {
	for _, c := range errorCodes {
		if c.code == api.Code {
			return &remoteError{api: api, sentinel: c.err}
		}
	}
	if ce := errs.ByName(api.Code); ce != nil {
		return &remoteError{api: api, sentinel: ce}
	}
	return &remoteError{api: api}
}
