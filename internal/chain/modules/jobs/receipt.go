package jobs

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// ReceiptDomain prefixes the digest a miner signs.
const ReceiptDomain = "AITBC/receipt/v1\x00"

// Receipt is a miner's signed account of one job: what it ran, on what
// input, what it produced, and what it charges. Prompt and result are
// committed to by hash; the payloads stay off chain.
type Receipt struct {
	_          struct{} `cbor:",toarray"`
	JobID      []byte   // 16 bytes
	ChainID    string
	Miner      []byte // 20-byte address
	Customer   []byte // 20-byte address
	Model      string
	PromptHash []byte // SHA-256 of the prompt
	ResultHash []byte // SHA-256 of the result text
	TokensIn   uint64
	TokensOut  uint64
	StartMs    int64 // unix milliseconds
	EndMs      int64
	Price      coin.Amount // tokens out × the miner's price per 1,000, rounded down
	Sig        []byte      // ed25519 over SignBytes, by the miner's key
	// AttestHash, when set, is the SHA-256 of the miner's attestation
	// (internal/verify: hidden-state commitments, model file hash,
	// quantisation, engine version), which travels with the result. A
	// receipt without it encodes and signs exactly as before (v1), so old
	// receipts keep their bytes, hashes and signatures.
	AttestHash []byte
}

// ReceiptDomainV2 prefixes the digest of a receipt with an attestation.
const ReceiptDomainV2 = "AITBC/receipt/v2\x00"

// receiptV1 is the wire form of a receipt without an attestation: the
// 13-element array every receipt had before attestations.
type receiptV1 struct {
	_          struct{} `cbor:",toarray"`
	JobID      []byte
	ChainID    string
	Miner      []byte
	Customer   []byte
	Model      string
	PromptHash []byte
	ResultHash []byte
	TokensIn   uint64
	TokensOut  uint64
	StartMs    int64
	EndMs      int64
	Price      coin.Amount
	Sig        []byte
}

// receiptV2 appends the attestation hash (14 elements).
type receiptV2 struct {
	_          struct{} `cbor:",toarray"`
	JobID      []byte
	ChainID    string
	Miner      []byte
	Customer   []byte
	Model      string
	PromptHash []byte
	ResultHash []byte
	TokensIn   uint64
	TokensOut  uint64
	StartMs    int64
	EndMs      int64
	Price      coin.Amount
	Sig        []byte
	AttestHash []byte
}

// MarshalCBOR writes the v1 array when there is no attestation, else v2.
func (r Receipt) MarshalCBOR() ([]byte, error) {
	v1 := receiptV1{JobID: r.JobID, ChainID: r.ChainID, Miner: r.Miner, Customer: r.Customer, Model: r.Model,
		PromptHash: r.PromptHash, ResultHash: r.ResultHash, TokensIn: r.TokensIn, TokensOut: r.TokensOut,
		StartMs: r.StartMs, EndMs: r.EndMs, Price: r.Price, Sig: r.Sig}
	if len(r.AttestHash) == 0 {
		return tx.Marshal(v1)
	}
	return tx.Marshal(receiptV2{JobID: v1.JobID, ChainID: v1.ChainID, Miner: v1.Miner, Customer: v1.Customer, Model: v1.Model,
		PromptHash: v1.PromptHash, ResultHash: v1.ResultHash, TokensIn: v1.TokensIn, TokensOut: v1.TokensOut,
		StartMs: v1.StartMs, EndMs: v1.EndMs, Price: v1.Price, Sig: v1.Sig, AttestHash: r.AttestHash})
}

// UnmarshalCBOR reads either form, told apart by the array's length.
func (r *Receipt) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0] == 0x80|14 {
		var v receiptV2
		if err := tx.Unmarshal(b, &v); err != nil {
			return err
		}
		if len(v.AttestHash) == 0 {
			return fmt.Errorf("%w: empty attestation hash in a v2 receipt", ErrReceipt) // v1 is the canonical form
		}
		*r = Receipt{JobID: v.JobID, ChainID: v.ChainID, Miner: v.Miner, Customer: v.Customer, Model: v.Model,
			PromptHash: v.PromptHash, ResultHash: v.ResultHash, TokensIn: v.TokensIn, TokensOut: v.TokensOut,
			StartMs: v.StartMs, EndMs: v.EndMs, Price: v.Price, Sig: v.Sig, AttestHash: v.AttestHash}
		return nil
	}
	var v receiptV1
	if err := tx.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Receipt{JobID: v.JobID, ChainID: v.ChainID, Miner: v.Miner, Customer: v.Customer, Model: v.Model,
		PromptHash: v.PromptHash, ResultHash: v.ResultHash, TokensIn: v.TokensIn, TokensOut: v.TokensOut,
		StartMs: v.StartMs, EndMs: v.EndMs, Price: v.Price, Sig: v.Sig}
	return nil
}

// ErrReceipt is any malformed or wrongly signed receipt.
var ErrReceipt = errors.New("invalid receipt")

type receiptDoc struct {
	_          struct{} `cbor:",toarray"`
	JobID      []byte
	ChainID    string
	Miner      []byte
	Customer   []byte
	Model      string
	PromptHash []byte
	ResultHash []byte
	TokensIn   uint64
	TokensOut  uint64
	StartMs    int64
	EndMs      int64
	Price      coin.Amount
}

// receiptDocV2 is receiptDoc with the attestation hash.
type receiptDocV2 struct {
	_          struct{} `cbor:",toarray"`
	Doc        receiptDoc
	AttestHash []byte
}

// SignBytes is the digest the miner signs: the v1 digest for a receipt
// without an attestation, else one over the v1 fields and AttestHash
// under its own domain.
func (r *Receipt) SignBytes() []byte {
	doc := receiptDoc{
		JobID: r.JobID, ChainID: r.ChainID, Miner: r.Miner, Customer: r.Customer, Model: r.Model,
		PromptHash: r.PromptHash, ResultHash: r.ResultHash, TokensIn: r.TokensIn, TokensOut: r.TokensOut,
		StartMs: r.StartMs, EndMs: r.EndMs, Price: r.Price,
	}
	domain := ReceiptDomain
	var b []byte
	var err error
	if len(r.AttestHash) == 0 {
		b, err = tx.Marshal(doc)
	} else {
		domain = ReceiptDomainV2
		b, err = tx.Marshal(receiptDocV2{Doc: doc, AttestHash: r.AttestHash})
	}
	if err != nil {
		panic(err) // plain fields always encode
	}
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(b)
	return h.Sum(nil)
}

// Sign signs the receipt with the miner's key and sets Miner to its address.
func (r *Receipt) Sign(priv ed25519.PrivateKey) {
	r.SignWith(priv.Public().(ed25519.PublicKey), func(m []byte) []byte { return ed25519.Sign(priv, m) })
}

// SignWith signs with a key held elsewhere (a keystore key): pub is its
// public key and sign signs a digest.
func (r *Receipt) SignWith(pub ed25519.PublicKey, sign func(msg []byte) []byte) {
	a := address.FromPubKey(pub)
	r.Miner = a[:]
	r.Sig = sign(r.SignBytes())
}

// CheckShape validates sizes and ordering, without the signature.
func (r *Receipt) CheckShape() error {
	switch {
	case len(r.JobID) != IDLen:
		return fmt.Errorf("%w: job id is %d bytes", ErrReceipt, len(r.JobID))
	case len(r.Miner) != address.Len || len(r.Customer) != address.Len:
		return fmt.Errorf("%w: miner or customer address", ErrReceipt)
	case len(r.PromptHash) != sha256.Size || len(r.ResultHash) != sha256.Size:
		return fmt.Errorf("%w: prompt and result hashes must be SHA-256", ErrReceipt)
	case r.EndMs < r.StartMs:
		return fmt.Errorf("%w: ends before it starts", ErrReceipt)
	case len(r.AttestHash) != 0 && len(r.AttestHash) != sha256.Size:
		return fmt.Errorf("%w: attestation hash is %d bytes", ErrReceipt, len(r.AttestHash))
	case len(r.Sig) != ed25519.SignatureSize:
		return fmt.Errorf("%w: signature is %d bytes", ErrReceipt, len(r.Sig))
	}
	return nil
}

// Verify checks the shape and that pub (whose address must be Miner)
// signed the receipt.
func (r *Receipt) Verify(pub ed25519.PublicKey) error {
	if err := r.CheckShape(); err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key", ErrReceipt)
	}
	if a := address.FromPubKey(pub); string(a[:]) != string(r.Miner) {
		return fmt.Errorf("%w: key does not belong to miner", ErrReceipt)
	}
	if !tx.VerifySignature(pub, r.SignBytes(), r.Sig) {
		return fmt.Errorf("%w: bad signature", ErrReceipt)
	}
	return nil
}

// Encode returns the canonical CBOR of the receipt.
func (r *Receipt) Encode() ([]byte, error) { return tx.Marshal(r) }

// DecodeReceipt parses canonical receipt bytes.
func DecodeReceipt(b []byte) (*Receipt, error) {
	var r Receipt
	if err := tx.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReceipt, err)
	}
	return &r, r.CheckShape()
}

// Hash is the SHA-256 of the receipt's canonical bytes: what settlement
// anchors on chain.
func (r *Receipt) Hash() ([32]byte, error) {
	b, err := r.Encode()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// HashHex is Hash in hex.
func (r *Receipt) HashHex() string {
	h, _ := r.Hash()
	return hex.EncodeToString(h[:])
}

// PriceFor is what a job costs at pricePer1k for tokensOut output tokens.
func PriceFor(tokensOut uint64, pricePer1k coin.Amount) coin.Amount {
	return pricePer1k.MulDiv(tokensOut, 1000)
}
