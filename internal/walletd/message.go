package walletd

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/httpx"
)

// MessageDomain reports whether the wallet signs messages in domain. Each
// allowed domain is a distinct prefix of the signed digest, so a signed
// message can never pass for a transaction signature (domain
// "AITBC/tx/v1") or anything else.
func MessageDomain(domain string) bool {
	switch domain {
	case "AITBC/tenant/v2\x00": // obtain a coordinator API key for the address (v1, without the name, is retired)
		return true
	case "AITBC/web-signin/v1\x00": // sign in to the web pages: a server's one-time challenge
		return true
	}
	return false
}

// Signature is a signed message.
type Signature struct {
	Address   address.Address `json:"address"`
	PubKey    string          `json:"pubkey"`    // hex ed25519
	Signature string          `json:"signature"` // hex, over sha256(domain || payload)
}

// SignMessage signs sha256(domain || payload) with wallet name (password,
// or the unlocked key when empty). Only the domains MessageDomain allows are
// signed.
func (s *Service) SignMessage(_ context.Context, name, password, domain string, payload []byte) (Signature, error) {
	if !MessageDomain(domain) {
		return Signature{}, fmt.Errorf("%w: the wallet does not sign messages in domain %q", ErrInvalidRequest, strings.TrimRight(domain, "\x00"))
	}
	if len(payload) > 4096 {
		return Signature{}, fmt.Errorf("%w: payload longer than 4096 bytes", ErrInvalidRequest)
	}
	k, release, err := s.signer(name, password)
	if err != nil {
		return Signature{}, err
	}
	defer release()
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(payload)
	return Signature{Address: k.Address(), PubKey: hex.EncodeToString(k.PublicKey()), Signature: hex.EncodeToString(k.Sign(h.Sum(nil)))}, nil
}

// SignMessageRequest is POST /api/v1/wallets/{name}/sign-message.
type SignMessageRequest struct {
	Domain   string `json:"domain"`  // e.g. "AITBC/tenant/v2" (the trailing NUL is implied)
	Payload  string `json:"payload"` // base64
	Password string `json:"password,omitempty"`
}

func (s *Server) signMessage(w http.ResponseWriter, r *http.Request) {
	var req SignMessageRequest
	if !s.decode(w, r, &req) {
		return
	}
	payload, err := base64.StdEncoding.DecodeString(req.Payload)
	if err != nil {
		s.fail(w, fmt.Errorf("%w: payload must be base64", ErrInvalidRequest))
		return
	}
	sig, err := s.svc.SignMessage(r.Context(), r.PathValue("name"), req.Password, req.Domain+"\x00", payload)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, sig)
}

// SignMessage asks the daemon to sign a message (see Service.SignMessage);
// domain includes its trailing NUL.
func (c *Client) SignMessage(ctx context.Context, name, password, domain string, payload []byte) (Signature, error) {
	req := SignMessageRequest{Domain: strings.TrimSuffix(domain, "\x00"), Payload: base64.StdEncoding.EncodeToString(payload), Password: password}
	var v Signature
	return v, c.onWallet(ctx, http.MethodPost, name, "sign-message", req, &v)
}
