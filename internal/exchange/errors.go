// Package exchange is the exchange API server (port 8001, --exchange-listen):
// the AITBC/BTC order book, trades, candles and ticker read from a chain
// node; wallet-address sign-in by a signed one-time challenge with a 24 h
// session; the signed-in wallet's orders, placed and cancelled through the
// wallet daemon (which signs and submits the exchange/place and
// exchange/cancel transactions); and a WebSocket that pushes the book and
// new trades after each block.
//
// The chain is the source of truth: the server keeps no order state of
// its own, only sessions (in memory: a restart signs everyone out).
// Started by `aitbc exchange serve` and by `aitbc devnet`. Imported by
// internal/system (composition root) and the CLI for BuildOrder and the
// client.
package exchange

import (
	"errors"
	"net/http"

	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Errors of the exchange API; test them with errors.Is.
var (
	ErrInvalidRequest  = errors.New("exchange: invalid request")
	ErrSignInRequired  = errors.New("exchange: sign in first")
	ErrBadChallenge    = errors.New("exchange: unknown, used or expired challenge")
	ErrBadSignature    = errors.New("exchange: signature does not verify for the address")
	ErrNotYourWallet   = errors.New("exchange: the wallet is not the signed-in address")
	ErrNoWallets       = errors.New("exchange: no wallet daemon configured")
	ErrNodeUnavailable = errors.New("exchange: chain node unavailable")
	ErrRateLimited     = errors.New("exchange: too many requests")
	ErrBusy            = errors.New("exchange: too many sessions or subscribers")
	ErrNoPrice         = errors.New("exchange: no price on the other side of the book for a market order")
)

type errorCode struct {
	err    error
	status int
	code   string
}

// errorCodes is the one table that maps errors to HTTP statuses and codes
// (server) and codes back to errors (client).
var errorCodes = []errorCode{
	{httpx.ErrBodyTooLarge, http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge},
	{ErrInvalidRequest, http.StatusBadRequest, "invalid_request"},
	{ErrSignInRequired, http.StatusUnauthorized, "sign_in_required"},
	{ErrBadChallenge, http.StatusUnauthorized, "bad_challenge"},
	{ErrBadSignature, http.StatusUnauthorized, "bad_signature"},
	{ErrNotYourWallet, http.StatusForbidden, "not_your_wallet"},
	{ErrNoWallets, http.StatusServiceUnavailable, "wallets_not_configured"},
	{ErrNodeUnavailable, http.StatusBadGateway, "node_unavailable"},
	{ErrRateLimited, http.StatusTooManyRequests, "rate_limited"},
	{ErrBusy, http.StatusServiceUnavailable, "busy"},
	{ErrNoPrice, http.StatusConflict, "no_price"},
	{ErrCannotFill, http.StatusConflict, "cannot_fill"},
}

// statusOf maps an error to its status and code: the table's sentinels,
// then chain errors (their registered code; 404 for a missing record,
// 400 otherwise), then errors a wallet daemon or node answered with a
// code, which keep it.
func statusOf(err error) (int, string) {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.status, e.code
		}
	}
	var ce *errs.Error
	if errors.As(err, &ce) {
		if ce.Kind == errs.KindNotFound {
			return http.StatusNotFound, ce.Name
		}
		return http.StatusBadRequest, ce.Name
	}
	var ae *httpx.APIError
	if errors.As(err, &ae) && ae.Code != "" {
		if ae.Status >= 400 && ae.Status < 500 {
			return ae.Status, ae.Code
		}
		return http.StatusBadGateway, ae.Code
	}
	return http.StatusInternalServerError, "internal"
}
