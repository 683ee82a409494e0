package node

import (
	"errors"
	"net/http"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// HTTPError maps the node's own errors to HTTP statuses and codes for the
// REST API (chain errors, modules' query errors included, are mapped by the
// API itself from their kind).
func HTTPError(err error) (int, string, bool) {
	switch {
	case errors.Is(err, ErrTxNotFound):
		return http.StatusNotFound, "tx_not_found", true
	case errors.Is(err, ErrBlockNotFound):
		return http.StatusNotFound, "block_not_found", true
	case errors.Is(err, ErrTxKnown):
		return http.StatusConflict, "tx_already_known", true
	case errors.Is(err, ErrMempoolFull):
		return http.StatusServiceUnavailable, "mempool_full", true
	case errors.Is(err, ErrNoFaucet):
		return http.StatusNotImplemented, "faucet_not_configured", true
	case errors.Is(err, errInvalidHash):
		return http.StatusBadRequest, "invalid_hash", true
	}
	return 0, "", false
}

var errInvalidHash = tx.ErrInvalidHash
