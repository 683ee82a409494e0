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

// SignBytes is the digest the miner signs.
func (r *Receipt) SignBytes() []byte {
	b, err := tx.Marshal(receiptDoc{
		JobID: r.JobID, ChainID: r.ChainID, Miner: r.Miner, Customer: r.Customer, Model: r.Model,
		PromptHash: r.PromptHash, ResultHash: r.ResultHash, TokensIn: r.TokensIn, TokensOut: r.TokensOut,
		StartMs: r.StartMs, EndMs: r.EndMs, Price: r.Price,
	})
	if err != nil {
		panic(err) // plain fields always encode
	}
	h := sha256.New()
	h.Write([]byte(ReceiptDomain))
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
