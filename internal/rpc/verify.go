package rpc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// ErrProof is returned when a transaction cannot be proven.
var ErrProof = errors.New("inclusion proof failed")

// Verification is the result of VerifyTx.
type Verification struct {
	TxHash    string `json:"tx_hash"`
	Height    int64  `json:"height"`
	Index     int64  `json:"index"`
	BlockHash string `json:"block_hash"`
	DataHash  string `json:"data_hash"`
	Signer    string `json:"signer"`
	Signature bool   `json:"signature_valid"`
	Included  bool   `json:"inclusion_proven"`
	ChainID   string `json:"chain_id"`
	Status    string `json:"status"`
}

// VerifyProof checks that p proves p.Raw is in a block whose header data
// hash is dataHash (hex): the Merkle path from the transaction's hash to
// the root must reproduce dataHash.
func VerifyProof(p TxProof, dataHash string) error {
	raw, err := base64.StdEncoding.DecodeString(p.Raw)
	if err != nil {
		return fmt.Errorf("%w: raw transaction is not base64", ErrProof)
	}
	root, err := hex.DecodeString(dataHash)
	if err != nil || len(root) != sha256.Size {
		return fmt.Errorf("%w: data hash %q is not a SHA-256 hex digest", ErrProof, dataHash)
	}
	leaf, err := hex.DecodeString(p.LeafHash)
	if err != nil {
		return fmt.Errorf("%w: leaf hash is not hex", ErrProof)
	}
	mp := merkle.Proof{Total: p.Total, Index: p.Index, LeafHash: leaf}
	for _, a := range p.Aunts {
		b, err := hex.DecodeString(a)
		if err != nil {
			return fmt.Errorf("%w: aunt is not hex", ErrProof)
		}
		mp.Aunts = append(mp.Aunts, b)
	}
	if p.Index < 0 || p.Index >= p.Total {
		return fmt.Errorf("%w: index %d outside 0..%d", ErrProof, p.Index, p.Total-1)
	}
	// A block's data hash is the Merkle root of the SHA-256 of each tx.
	h := sha256.Sum256(raw)
	if err := mp.Verify(root, h[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrProof, err)
	}
	return nil
}

// VerifyTx checks a committed transaction from first principles: its bytes
// hash to the requested hash, decode, carry a valid signature for this
// chain, and are proven (Merkle path) to be in the block at the recorded
// height, against that block header's data hash fetched separately.
func (c *Client) VerifyTx(ctx context.Context, hash string) (Verification, error) {
	want, err := tx.ParseHash(hash)
	if err != nil {
		return Verification{}, err
	}
	v := Verification{TxHash: tx.HashString(want)}
	info, err := c.Tx(ctx, v.TxHash)
	if err != nil {
		return v, err
	}
	v.Status = info.Status
	if info.Status != "committed" && info.Status != "failed" {
		return v, fmt.Errorf("%w: transaction is %s, not in a block yet", ErrProof, info.Status)
	}
	p, err := c.Proof(ctx, v.TxHash)
	if err != nil {
		return v, err
	}
	raw, err := base64.StdEncoding.DecodeString(p.Raw)
	if err != nil || tx.Hash(raw) != want {
		return v, fmt.Errorf("%w: the node returned bytes that do not hash to %s", ErrProof, v.TxHash)
	}
	t, err := tx.Decode(raw)
	if err != nil {
		return v, err
	}
	chain, err := c.Chain(ctx)
	if err != nil {
		return v, err
	}
	v.ChainID = chain.ChainID
	if t.ChainID != chain.ChainID {
		return v, fmt.Errorf("%w: transaction is for chain %q, node serves %q", tx.ErrWrongChain, t.ChainID, chain.ChainID)
	}
	if err := t.Verify(); err != nil {
		return v, err
	}
	v.Signature, v.Signer = true, t.Sender().String()
	blk, err := c.Block(ctx, p.Height)
	if err != nil {
		return v, err
	}
	v.Height, v.Index, v.BlockHash, v.DataHash = blk.Height, p.Index, blk.Hash, blk.DataHash
	if !strings.EqualFold(blk.DataHash, p.DataHash) {
		return v, fmt.Errorf("%w: proof is for data hash %s, block %d has %s", ErrProof, p.DataHash, blk.Height, blk.DataHash)
	}
	if err := VerifyProof(p, blk.DataHash); err != nil {
		return v, err
	}
	v.Included = true
	return v, nil
}
