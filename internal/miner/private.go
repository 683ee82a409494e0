package miner

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
	"github.com/aitbc/aitbc/internal/zk"
)

// privateReceipt signs a private job's private receipt (docs/VERIFICATION.md,
// "Private receipts"): the public receipt r with its token counts and
// price replaced by a commitment to them under a fresh random blinding.
// The blinding goes to the coordinator only, which proves the settlement
// with it; the chain sees the commitment.
func privateReceipt(r *jobs.Receipt, pricePer1k coin.Amount, pub ed25519.PublicKey, sign func([]byte) []byte) ([]byte, string, error) {
	bl, err := zk.NewBlinding()
	if err != nil {
		return nil, "", err
	}
	c, err := chainzk.Commit(chainzk.Opening{TokensIn: r.TokensIn, TokensOut: r.TokensOut, PricePer1000: uint64(pricePer1k), Blinding: bl})
	if err != nil {
		return nil, "", fmt.Errorf("miner: private receipt: %w", err)
	}
	pr := jobs.PrivateOf(r, c)
	pr.SignWith(pub, sign)
	b, err := tx.Marshal(pr)
	if err != nil {
		return nil, "", err
	}
	return b, hex.EncodeToString(bl[:]), nil
}
