package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aitbc/aitbc/internal/httpx"
)

// The web server's failures. Each has one status and code in errorTable,
// used by the JSON API ({"error":{"code","message"}}) and the HTML error
// pages alike.
var (
	ErrNotFound       = errors.New("web: not found")
	ErrBadRequest     = errors.New("web: bad request")
	ErrCrossSite      = errors.New("web: cross-site request refused")
	ErrSignInRequired = errors.New("web: sign in required")
	ErrSignInFailed   = errors.New("web: sign-in failed")
	ErrNotOnChain     = errors.New("web: not on this chain yet")
	ErrUnavailable    = errors.New("web: service unavailable")
	ErrNoCoordinator  = errors.New("web: no coordinator configured")
)

var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{ErrNotFound, http.StatusNotFound, "not_found"},
	{ErrBadRequest, http.StatusBadRequest, "bad_request"},
	{ErrCrossSite, http.StatusForbidden, "cross_site_request"},
	{ErrSignInRequired, http.StatusUnauthorized, "sign_in_required"},
	{ErrSignInFailed, http.StatusUnauthorized, "sign_in_failed"},
	{ErrNotOnChain, http.StatusNotImplemented, "not_on_chain"},
	{ErrUnavailable, http.StatusBadGateway, "upstream_unavailable"},
	{ErrNoCoordinator, http.StatusServiceUnavailable, "no_coordinator"},
}

// notFoundCodes are the node's and coordinator's codes for an id that does
// not exist: the pages answer them with their 404.
var notFoundCodes = map[string]bool{
	"tx_not_found": true, "block_not_found": true, "job_not_found": true, "miner_not_found": true,
	"not_found": true, "account_not_found": true,
}

func errf(sentinel error, format string, a ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, a...))
}

// classify returns the status, code and the message a visitor may read.
// An answer from the node or coordinator keeps its code (a 404 of theirs
// is ours); a transport failure is upstream_unavailable.
func classify(err error) (int, string, string) {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.status, e.code, err.Error()
		}
	}
	var api *httpx.APIError
	if errors.As(err, &api) {
		switch {
		case notFoundCodes[api.Code] || api.Status == http.StatusNotFound:
			return http.StatusNotFound, "not_found", api.Message
		case api.Status >= 400 && api.Status < 500:
			return api.Status, api.Code, api.Message
		}
		return http.StatusBadGateway, "upstream_error", api.Message
	}
	return http.StatusBadGateway, "upstream_unavailable", "a service behind this page did not answer: " + err.Error()
}

// IsNotFound reports whether err means the thing asked for does not exist.
func IsNotFound(err error) bool {
	if err == nil {
		return false
	}
	s, _, _ := classify(err)
	return s == http.StatusNotFound
}
