package jobs_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// oldReceipt is the receipt's wire form before attestations, copied here
// so that the test fails if the v1 bytes ever change.
type oldReceipt struct {
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

func sampleReceipt(priv ed25519.PrivateKey, attest []byte) *jobs.Receipt {
	ph, rh := sha256.Sum256([]byte("prompt")), sha256.Sum256([]byte("result"))
	r := &jobs.Receipt{JobID: bytes.Repeat([]byte{7}, jobs.IDLen), ChainID: "aitbc-devnet", Customer: bytes.Repeat([]byte{2}, 20),
		Model: "tolstoy-1m", PromptHash: ph[:], ResultHash: rh[:], TokensIn: 5, TokensOut: 64, StartMs: 1000, EndMs: 2000,
		Price: coin.Amount(640), AttestHash: attest}
	r.Sign(priv)
	return r
}

func TestReceiptWithoutAttestationKeepsItsV1Bytes(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	r := sampleReceipt(priv, nil)
	got, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want, err := tx.Marshal(oldReceipt{JobID: r.JobID, ChainID: r.ChainID, Miner: r.Miner, Customer: r.Customer, Model: r.Model,
		PromptHash: r.PromptHash, ResultHash: r.ResultHash, TokensIn: r.TokensIn, TokensOut: r.TokensOut,
		StartMs: r.StartMs, EndMs: r.EndMs, Price: r.Price, Sig: r.Sig})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("a receipt without attestation encodes differently from v1:\n%x\n%x", got, want)
	}
	back, err := jobs.DecodeReceipt(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(priv.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("an old receipt no longer verifies: %v", err)
	}
}

func TestReceiptSignsItsAttestationHash(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	h := sha256.Sum256([]byte("attestation"))
	r := sampleReceipt(priv, h[:])
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := jobs.DecodeReceipt(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.AttestHash, h[:]) {
		t.Fatal("attestation hash lost in encoding")
	}
	if err := back.Verify(pub); err != nil {
		t.Fatal(err)
	}
	if back.HashHex() == sampleReceipt(priv, nil).HashHex() {
		t.Error("the attestation does not change the receipt's hash")
	}
	// Swapping in another attestation, or stripping it, breaks the signature.
	other := sha256.Sum256([]byte("another attestation"))
	back.AttestHash = other[:]
	if err := back.Verify(pub); !errors.Is(err, jobs.ErrReceipt) {
		t.Errorf("swapped attestation: %v, want ErrReceipt", err)
	}
	back.AttestHash = nil
	if err := back.Verify(pub); !errors.Is(err, jobs.ErrReceipt) {
		t.Errorf("stripped attestation: %v, want ErrReceipt", err)
	}
	back.AttestHash = []byte{1, 2, 3}
	if err := back.CheckShape(); !errors.Is(err, jobs.ErrReceipt) {
		t.Errorf("short attestation hash: %v, want ErrReceipt", err)
	}
}
