package cli

import (
	"context"

	"github.com/aitbc/aitbc/internal/address"
)

// walletAddress resolves a wallet name to its address through the wallet
// daemon, or the local keystore when no daemon answers.
func (g *Globals) walletAddress(ctx context.Context, name string) (address.Address, error) {
	w, err := g.wallets(ctx)
	if err != nil {
		return address.Address{}, err
	}
	info, err := w.Get(ctx, name)
	if err != nil {
		return address.Address{}, err
	}
	return info.Address, nil
}
