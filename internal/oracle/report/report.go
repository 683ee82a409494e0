// Package report is the agent's side of the oracle (docs/AGENTS.md): a
// MetricsCollector that a serving miner feeds with each task it completes,
// and an OracleReporter that sends the collector's figures, signed with
// the agent's ed25519 key, to the oracle's POST /api/v1/report.
//
// AITBC signs reports with ed25519 (the chain's key type), not the seed's
// ECDSA. The signed bytes are domain-separated: Domain, the chain id, a
// newline, and the exact bytes of the "payload" JSON object as sent, so a
// signature is valid for one chain and one payload only and the oracle
// needs no JSON canonicalization.
package report

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Domain prefixes every signed report: a signature over a report can never
// be taken for a transaction or any other AITBC signature.
const Domain = "AITBC oracle report v1\n"

// MaxBody bounds a report request.
const MaxBody = 4 << 10

// Payload is the seed's report. Counters are for the interval since the
// agent's previous report (ProcessedTokens, TasksCompleted, and
// AvgLatencyMs over those tasks); UptimeSeconds is since the agent
// started; Timestamp is Unix seconds.
type Payload struct {
	Agent           string  `json:"agent"`
	ProcessedTokens uint64  `json:"processed_tokens"`
	AvgLatencyMs    float64 `json:"avg_latency_ms"`
	UptimeSeconds   uint64  `json:"uptime_seconds"`
	TasksCompleted  uint64  `json:"tasks_completed"`
	Timestamp       int64   `json:"timestamp"`
}

// Request is the body of POST /api/v1/report.
type Request struct {
	Payload   json.RawMessage `json:"payload"`
	PublicKey string          `json:"public_key"` // hex, 32 bytes
	Signature string          `json:"signature"`  // hex, 64 bytes
}

// SignedBytes are the bytes a report's signature covers.
func SignedBytes(chainID string, payload []byte) []byte {
	b := make([]byte, 0, len(Domain)+len(chainID)+1+len(payload))
	b = append(b, Domain...)
	b = append(b, chainID...)
	b = append(b, '\n')
	return append(b, payload...)
}

// Signer is the agent's key (a *keystore.Key).
type Signer interface {
	Sign(msg []byte) []byte
	PublicKey() ed25519.PublicKey
}

// Sign builds a signed request for p.
func Sign(s Signer, chainID string, p Payload) (Request, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return Request{}, err
	}
	return Request{Payload: raw, PublicKey: hex.EncodeToString(s.PublicKey()), Signature: hex.EncodeToString(s.Sign(SignedBytes(chainID, raw)))}, nil
}

// Errors of Verify, each a distinct code at the oracle.
var (
	ErrMalformed = errors.New("malformed report")
	ErrSignature = errors.New("bad signature")
)

// fields are the payload's fields, all required.
var fields = []string{"agent", "processed_tokens", "avg_latency_ms", "uptime_seconds", "tasks_completed", "timestamp"}

// Verify checks a request's structure (exactly the six fields, of their
// types) and its signature, and returns its payload and the public key.
// That the key is the agent's (its address) is checked too; whether the
// agent is registered, fresh and not too frequent is the oracle's part.
func Verify(chainID string, r Request) (Payload, ed25519.PublicKey, error) {
	var p Payload
	if len(r.Payload) == 0 {
		return p, nil, fmt.Errorf("%w: no payload", ErrMalformed)
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(r.Payload, &present); err != nil {
		return p, nil, fmt.Errorf("%w: payload is not an object: %v", ErrMalformed, err)
	}
	for _, f := range fields {
		if _, ok := present[f]; !ok {
			return p, nil, fmt.Errorf("%w: payload lacks %q", ErrMalformed, f)
		}
	}
	if len(present) != len(fields) {
		for k := range present {
			if !knownField(k) {
				return p, nil, fmt.Errorf("%w: payload has an unknown field %q", ErrMalformed, k)
			}
		}
		return p, nil, fmt.Errorf("%w: payload has a duplicate field", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if p.AvgLatencyMs < 0 || p.AvgLatencyMs > 1e9 || p.AvgLatencyMs != p.AvgLatencyMs {
		return p, nil, fmt.Errorf("%w: avg_latency_ms %v out of range", ErrMalformed, p.AvgLatencyMs)
	}
	const maxCount = 1 << 53
	if p.ProcessedTokens > maxCount || p.TasksCompleted > maxCount || p.UptimeSeconds > maxCount || p.Timestamp <= 0 {
		return p, nil, fmt.Errorf("%w: a figure out of range", ErrMalformed)
	}
	pub, err := hex.DecodeString(r.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return p, nil, fmt.Errorf("%w: public_key must be 64 hex characters", ErrMalformed)
	}
	sig, err := hex.DecodeString(r.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return p, nil, fmt.Errorf("%w: signature must be 128 hex characters", ErrMalformed)
	}
	if !ed25519.Verify(pub, SignedBytes(chainID, r.Payload), sig) {
		return p, nil, fmt.Errorf("%w: the signature does not verify for this payload and chain", ErrSignature)
	}
	return p, pub, nil
}

func knownField(k string) bool {
	for _, f := range fields {
		if f == k {
			return true
		}
	}
	return false
}
