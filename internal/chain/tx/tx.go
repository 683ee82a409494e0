// Package tx is the wire format of AITBC transactions: deterministic CBOR
// (RFC 8949 core deterministic encoding), signed with ed25519 over a
// domain-separated SHA-256 digest that binds the chain id.
//
// A transaction carries one message, addressed to a module by its type
// ("bank/send"); the message body is the module's own CBOR, opaque here, so
// that modules can be added without touching this package.
//
// Decode accepts only the canonical encoding: the bytes must re-encode to
// themselves. A transaction therefore has exactly one byte form and one
// hash, and no signature can be replayed under a different encoding.
package tx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
)

// MaxSize is the largest encoded transaction accepted.
const MaxSize = 64 << 10

// SignDomain prefixes every signed digest, so a signature over a
// transaction can never be valid for any other kind of AITBC message.
const SignDomain = "AITBC/tx/v1\x00"

// Errors of the "tx" codespace.
var (
	ErrMalformed    = errs.Register("tx", 2, "malformed_tx", "malformed transaction")
	ErrTooLarge     = errs.Register("tx", 3, "tx_too_large", "transaction too large")
	ErrBadSignature = errs.Register("tx", 4, "invalid_signature", "invalid signature")
	ErrWrongChain   = errs.Register("tx", 5, "wrong_chain_id", "wrong chain id")
	ErrBadNonce     = errs.Register("tx", 6, "invalid_nonce", "nonce already used")
	ErrNonceGap     = errs.Register("tx", 7, "nonce_gap", "nonce skips ahead")
	ErrFeeTooLow    = errs.Register("tx", 8, "fee_too_low", "fee below minimum")
	ErrUnknownMsg   = errs.Register("tx", 9, "unknown_msg", "unknown message type")
	ErrInvalidMsg   = errs.Register("tx", 10, "invalid_msg", "invalid message")
	ErrNoFunds      = errs.Register("tx", 11, "insufficient_fee_funds", "balance does not cover the fee")
)

// Msg is a module message: its type routes it, its body is module CBOR.
type Msg struct {
	_    struct{} `cbor:",toarray"`
	Type string
	Body cbor.RawMessage
}

// Tx is a signed transaction.
type Tx struct {
	_       struct{} `cbor:",toarray"`
	ChainID string
	Nonce   uint64
	Fee     coin.Amount
	PubKey  []byte
	Msg     Msg
	Sig     []byte

	// sender is the address of senderOf, set by Decode: every check and
	// execution of a transaction asks for its sender, and hashing the key
	// each time was a measurable share of a node's CPU.
	sender   address.Address
	senderOf *[ed25519.PublicKeySize]byte
}

// signDoc is what the signature covers: the transaction without Sig.
type signDoc struct {
	_       struct{} `cbor:",toarray"`
	ChainID string
	Nonce   uint64
	Fee     coin.Amount
	PubKey  []byte
	Msg     Msg
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   16,
		MaxArrayElements:  4096,
		MaxMapPairs:       4096,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v in deterministic CBOR. Modules use it for message
// bodies and state values.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes CBOR strictly and refuses any non-canonical encoding.
func Unmarshal(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return err
	}
	re, err := encMode.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(re, b) {
		return fmt.Errorf("non-canonical encoding")
	}
	return nil
}

// NewMsg builds a message from a module type and body value.
func NewMsg(typ string, body any) (Msg, error) {
	b, err := Marshal(body)
	if err != nil {
		return Msg{}, fmt.Errorf("tx: encode %s body: %w", typ, err)
	}
	return Msg{Type: typ, Body: b}, nil
}

// DecodeBody decodes the message body into v, canonically.
func (m Msg) DecodeBody(v any) error {
	if err := Unmarshal(m.Body, v); err != nil {
		return fmt.Errorf("%w: %s body: %v", ErrInvalidMsg, m.Type, err)
	}
	return nil
}

// Encode returns the canonical bytes of t.
func (t *Tx) Encode() ([]byte, error) {
	b, err := encMode.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("tx: encode: %w", err)
	}
	return b, nil
}

// Decode parses canonical transaction bytes and checks their shape (sizes
// of key and signature, a message type). It does not verify the signature.
func Decode(b []byte) (*Tx, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	var t Tx
	if err := Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := t.validateShape(); err != nil {
		return nil, err
	}
	key := [ed25519.PublicKeySize]byte(t.PubKey) // a copy: PubKey may change
	t.sender, t.senderOf = address.FromPubKey(t.PubKey), &key
	return &t, nil
}

func (t *Tx) validateShape() error {
	switch {
	case len(t.PubKey) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: public key is %d bytes, want %d", ErrMalformed, len(t.PubKey), ed25519.PublicKeySize)
	case len(t.Sig) != ed25519.SignatureSize:
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrMalformed, len(t.Sig), ed25519.SignatureSize)
	case t.ChainID == "" || len(t.ChainID) > 64:
		return fmt.Errorf("%w: chain id must be 1-64 bytes", ErrMalformed)
	case t.Msg.Type == "" || len(t.Msg.Type) > 64:
		return fmt.Errorf("%w: message type must be 1-64 bytes", ErrMalformed)
	}
	return nil
}

// SignBytes returns the digest that the sender signs, or nil when the
// message body is not well-formed CBOR (a decoded transaction always has a
// well-formed body; only a hand-built one can fail).
func (t *Tx) SignBytes() []byte {
	doc, err := encMode.Marshal(signDoc{ChainID: t.ChainID, Nonce: t.Nonce, Fee: t.Fee, PubKey: t.PubKey, Msg: t.Msg})
	if err != nil {
		return nil
	}
	h := sha256.New()
	h.Write([]byte(SignDomain))
	h.Write(doc)
	return h.Sum(nil)
}

// Sign fills PubKey and Sig using priv. A transaction whose body is not
// well-formed CBOR gets no signature (and Encode reports the body).
func (t *Tx) Sign(priv ed25519.PrivateKey) {
	t.PubKey = append([]byte(nil), priv.Public().(ed25519.PublicKey)...)
	t.Sig = nil
	if d := t.SignBytes(); d != nil {
		t.Sig = ed25519.Sign(priv, d)
	}
}

// Verify checks the signature.
func (t *Tx) Verify() error { return t.VerifyWith(nil) }

// VerifyWith checks the signature with v, which keeps expanded public keys
// between calls; a nil v verifies from scratch.
func (t *Tx) VerifyWith(v *Verifier) error {
	d := t.signed()
	if d == nil {
		return ErrBadSignature
	}
	ok := false
	if v != nil {
		ok = v.Verify(t.PubKey, d, t.Sig)
	} else {
		ok = VerifySignature(t.PubKey, d, t.Sig)
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// signed returns the signed digest, or nil when the key or signature has
// the wrong size or the body cannot be encoded.
func (t *Tx) signed() []byte {
	if len(t.PubKey) != ed25519.PublicKeySize || len(t.Sig) != ed25519.SignatureSize {
		return nil
	}
	return t.SignBytes()
}

// VerifyAll checks the signatures of txs as one batch (see
// Verifier.VerifyBatch): errs[i] is nil or ErrBadSignature, the verdict
// txs[i].VerifyWith(v) would give.
func VerifyAll(v *Verifier, txs []*Tx) []error {
	items := make([]Signed, len(txs))
	for i, t := range txs {
		if d := t.signed(); d != nil {
			items[i] = Signed{PubKey: t.PubKey, Msg: d, Sig: t.Sig}
		} // else left empty: refused without a check
	}
	ok := v.VerifyBatch(items)
	errs := make([]error, len(txs))
	for i := range txs {
		if !ok[i] || items[i].Msg == nil {
			errs[i] = ErrBadSignature
		}
	}
	return errs
}

// Sender is the address of the signing key.
func (t *Tx) Sender() address.Address {
	if t.senderOf != nil && bytes.Equal(t.senderOf[:], t.PubKey) {
		return t.sender
	}
	return address.FromPubKey(t.PubKey)
}

// Hash is the SHA-256 of the encoded bytes: the same hash CometBFT gives
// the transaction, so either can be used to find it.
func Hash(b []byte) [32]byte { return sha256.Sum256(b) }

// HashString formats a transaction hash as 0x-prefixed lower-case hex.
func HashString(h [32]byte) string { return "0x" + hex.EncodeToString(h[:]) }

// ErrInvalidHash is returned by ParseHash.
var ErrInvalidHash = errors.New("invalid transaction hash")

// ParseHash accepts a hash with or without 0x, in either case.
func ParseHash(s string) ([32]byte, error) {
	var h [32]byte
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return h, fmt.Errorf("%w %q: want 64 hex digits", ErrInvalidHash, s)
	}
	copy(h[:], b)
	return h, nil
}
