// Package minerproto is the wire protocol between the coordinator and its
// miners: JSON messages over one WebSocket per miner (GET /v1/miners/connect).
// See docs/COORDINATOR.md for the conversation. Imported by the coordinator
// and the miner daemon.
package minerproto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
)

// Message types.
const (
	TypeChallenge = "challenge"
	TypeHello     = "hello"
	TypeWelcome   = "welcome"
	TypeError     = "error"
	TypeJob       = "job"
	TypeCancel    = "cancel"
	TypeAck       = "ack"
	TypeReject    = "reject"
	TypeToken     = "token"
	TypeResult    = "result"
	TypeFailed    = "failed"
	TypeStatus    = "status"
)

// SessionDomain prefixes the digest a miner signs to open a session.
const SessionDomain = "AITBC/miner-session/v1\x00"

// Envelope carries every message; Type says which fields are set.
type Envelope struct {
	Type string `json:"type"`

	// challenge
	Nonce       string `json:"nonce,omitempty"`
	Coordinator string `json:"coordinator,omitempty"`
	ChainID     string `json:"chain_id,omitempty"`

	// hello
	Hello *Hello `json:"hello,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`

	// job
	Job *Job `json:"job,omitempty"`

	// ack, reject, token, result, failed, cancel
	JobID        string `json:"job_id,omitempty"`
	Attempt      int    `json:"attempt,omitempty"`
	Seq          int    `json:"seq,omitempty"`
	Text         string `json:"text,omitempty"`
	TokensIn     int    `json:"tokens_in,omitempty"`
	TokensOut    int    `json:"tokens_out,omitempty"`
	FinishReason string `json:"finish_reason,omitempty"`
	Receipt      []byte `json:"receipt,omitempty"` // canonical CBOR of a jobs.Receipt
	// A private job's result also carries the miner's private receipt
	// (canonical CBOR of a jobs.PrivateReceipt) and the blinding of its
	// commitment (64 hex digits), for the coordinator's proof only.
	PrivateReceipt []byte `json:"private_receipt,omitempty"`
	ZKBlinding     string `json:"zk_blinding,omitempty"`
	// Attestation is the canonical CBOR of the miner's verify.Attestation
	// (hidden-state commitments), whose SHA-256 the receipt signs; absent
	// for backends that cannot commit.
	Attestation []byte `json:"attestation,omitempty"`
	Retryable   bool   `json:"retryable,omitempty"`
	Reason      string `json:"reason,omitempty"`

	// status
	Running int `json:"running,omitempty"`
}

// Hello introduces a miner.
type Hello struct {
	Address      address.Address `json:"address"`
	PubKey       string          `json:"pubkey"` // hex
	Sig          string          `json:"sig"`    // hex, over SessionDigest
	Models       []string        `json:"models"`
	Slots        int             `json:"slots"`
	Backend      string          `json:"backend"`
	Hardware     string          `json:"hardware"`
	TokensPerSec float64         `json:"tokens_per_sec,omitempty"`
	Version      string          `json:"version,omitempty"`
	// Vision are the models of Models for which the miner's backend
	// accepts image inputs (chat messages with images); none for the
	// built-in engine.
	Vision []string `json:"vision,omitempty"`
}

// ChatMessage is one message of a chat job.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Images are the message's image inputs, each the standard base64 of
	// the image file's bytes (PNG, JPEG, GIF or WebP), as Ollama's API
	// carries them; an OpenAI image_url part's data: URL arrives here as
	// its base64 payload. Only miners that declare vision for the model
	// (Hello.Vision) are given such a job.
	Images []string `json:"images,omitempty"`
}

// HasImages reports whether any message carries an image.
func HasImages(msgs []ChatMessage) bool {
	for _, m := range msgs {
		if len(m.Images) > 0 {
			return true
		}
	}
	return false
}

// Job is a job as a miner receives it.
type Job struct {
	ID          string        `json:"id"`
	Attempt     int           `json:"attempt"`
	Model       string        `json:"model"`
	Prompt      string        `json:"prompt,omitempty"`
	Messages    []ChatMessage `json:"messages,omitempty"`
	PromptHash  string        `json:"prompt_hash"` // hex SHA-256, as on chain
	MaxTokens   int           `json:"max_tokens"`
	Temperature float32       `json:"temperature"`
	TopP        float32       `json:"top_p"`
	Seed        uint64        `json:"seed"`
	Stop        []string      `json:"stop,omitempty"`
	Customer    string        `json:"customer"`     // bech32
	PricePer1k  string        `json:"price_per_1k"` // decimal AITBC: what the receipt must charge per 1k tokens
	ChainID     string        `json:"chain_id"`
	// Private asks the miner for a private receipt too (jobs.PrivateReceipt:
	// a commitment in place of token counts and price), which the
	// coordinator settles with a proof.
	Private bool `json:"private,omitempty"`
}

// SessionDigest is what a miner signs to prove its address.
func SessionDigest(nonce []byte, coordinator address.Address) []byte {
	h := sha256.New()
	h.Write([]byte(SessionDomain))
	h.Write(nonce)
	h.Write(coordinator[:])
	return h.Sum(nil)
}

// ErrBadHello is returned for a hello that does not prove its address.
var ErrBadHello = errors.New("minerproto: invalid hello")

// VerifyHello checks that h is signed over the challenge by the key of
// h.Address, and returns the public key.
func VerifyHello(h *Hello, nonce []byte, coordinator address.Address) (ed25519.PublicKey, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: missing", ErrBadHello)
	}
	pub, err := hex.DecodeString(h.PubKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key", ErrBadHello)
	}
	if address.FromPubKey(pub) != h.Address {
		return nil, fmt.Errorf("%w: key does not match address", ErrBadHello)
	}
	sig, err := hex.DecodeString(h.Sig)
	if err != nil || !ed25519.Verify(pub, SessionDigest(nonce, coordinator), sig) {
		return nil, fmt.Errorf("%w: signature", ErrBadHello)
	}
	if len(h.Models) == 0 || h.Slots < 1 || h.Slots > 1024 {
		return nil, fmt.Errorf("%w: needs models and 1-1024 slots", ErrBadHello)
	}
	return pub, nil
}

// Signer signs with a miner's key without exposing it (keystore.Key is one).
type Signer interface {
	PublicKey() ed25519.PublicKey
	Sign(msg []byte) []byte
}

// KeySigner adapts a raw private key (tests, tools).
type KeySigner ed25519.PrivateKey

// PublicKey implements Signer.
func (k KeySigner) PublicKey() ed25519.PublicKey {
	return ed25519.PrivateKey(k).Public().(ed25519.PublicKey)
}

// Sign implements Signer.
func (k KeySigner) Sign(msg []byte) []byte { return ed25519.Sign(ed25519.PrivateKey(k), msg) }

// SignHello fills Address, PubKey and Sig for the challenge.
func SignHello(h *Hello, s Signer, nonce []byte, coordinator address.Address) {
	pub := s.PublicKey()
	h.Address = address.FromPubKey(pub)
	h.PubKey = hex.EncodeToString(pub)
	h.Sig = hex.EncodeToString(s.Sign(SessionDigest(nonce, coordinator)))
}

// PromptHash is the SHA-256 that commits a job to its input, on chain and in
// the receipt: of the prompt's bytes for a completion, or of the messages as
// canonical JSON ([{"role":...,"content":...},...]) for a chat. A message
// with images has them after its content, "images":["<base64>",...], so
// the hash covers every image's bytes; a message without has no "images"
// key, so chats without images hash as they always did.
func PromptHash(prompt string, messages []ChatMessage) [32]byte {
	if len(messages) == 0 {
		return sha256.Sum256([]byte(prompt))
	}
	b, err := json.Marshal(messages)
	if err != nil { // strings always marshal
		panic(err)
	}
	return sha256.Sum256(b)
}

// A miner fetches a job's input file over HTTP (GET
// /v1/miners/files/{sha256}?job_id=J), signing the request with its key:
// these headers carry its address, the time (Unix milliseconds) and the
// signature over FileDigest. The coordinator serves the file only to the
// miner the job is assigned to, and only a file the job names.
const (
	FileDomain      = "AITBC/miner-file/v1\x00"
	HeaderMiner     = "X-Miner-Address"
	HeaderMinerTime = "X-Miner-Time"
	HeaderMinerSig  = "X-Miner-Signature"
)

// FileDigest is what a miner signs to fetch file sha256 for job jobID from
// the coordinator at time unixMs.
func FileDigest(coordinator address.Address, jobID, sha256hex string, unixMs int64) []byte {
	h := sha256.New()
	h.Write([]byte(FileDomain))
	h.Write(coordinator[:])
	fmt.Fprintf(h, "%s\x00%s\x00%d", jobID, sha256hex, unixMs)
	return h.Sum(nil)
}
