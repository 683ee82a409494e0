package rpc

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/ratelimit"
)

// FaucetBackend is a node that submits faucet drips for HTTP callers
// (POST /api/v1/faucet), signing them with its faucet key. A Backend
// without it answers that route 501 faucet_not_configured; a node that
// has it but no key answers so through its ErrorMapper.
type FaucetBackend interface {
	Drip(ctx context.Context, to address.Address, amount coin.Amount) (string, error)
}

// FaucetRequest is the body of POST /api/v1/faucet. Amount is decimal
// AITBC; empty: all of the address's allowance left.
type FaucetRequest struct {
	Address string `json:"address"`
	Amount  string `json:"amount,omitempty"`
}

// FaucetResult answers an accepted drip (202): the transaction is in the
// mempool. Amount 0 asked for the whole allowance left.
type FaucetResult struct {
	TxHash  string          `json:"tx_hash"`
	Status  string          `json:"status"`
	Address address.Address `json:"address"`
	Amount  coin.Amount     `json:"amount"`
}

// DefaultFaucetLimit is the per-client limit of POST /api/v1/faucet: 5
// requests at once, then one a minute. The chain limits each address; this
// limits how many addresses one client fills.
var DefaultFaucetLimit = ratelimit.Config{Rate: 1.0 / 60, Burst: 5}

// SetFaucetLimit replaces the per-client limit of POST /api/v1/faucet
// (a Rate of 0 or less: none). Call it before serving.
func (s *Server) SetFaucetLimit(cfg ratelimit.Config) { s.faucetLimit = ratelimit.New(cfg) }

// faucetDrip serves POST /api/v1/faucet: every request counts against the
// client's limit, then the node signs and submits the drip.
func (s *Server) faucetDrip(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.faucetLimit.Allow(httpx.ClientAddr(r)); !ok {
		httpx.WriteRateLimited(w, wait, "too many faucet requests from this client")
		return
	}
	fb, ok := s.b.(FaucetBackend)
	if !ok {
		httpx.WriteError(w, http.StatusNotImplemented, "faucet_not_configured", "this node does not submit faucet drips")
		return
	}
	var req FaucetRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		badRequest(w, "invalid_request", err.Error())
		return
	}
	to, ok := parseAddr(w, strings.TrimSpace(req.Address))
	if !ok {
		return
	}
	var amt coin.Amount
	if a := strings.TrimSpace(req.Amount); a != "" {
		v, err := coin.Parse(a)
		if err != nil || v == 0 {
			badRequest(w, "invalid_faucet_amount", "amount must be a positive decimal amount of AITBC, not "+req.Amount)
			return
		}
		amt = v
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	h, err := fb.Drip(ctx, to, amt)
	if err != nil {
		s.failTx(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, FaucetResult{TxHash: h, Status: "pending", Address: to, Amount: amt})
}
