package bank

import (
	"github.com/aitbc/aitbc/internal/chain/module"
)

// InitGenesis implements module.Genesis. The genesis accounts were minted
// before it runs (they are the app_state's "accounts"); it records what
// they amount to as the genesis supply.
func (k *Keeper) InitGenesis(ctx *module.Context, _ []byte) error {
	s, err := k.Supply(ctx.KV)
	if err != nil {
		return err
	}
	putUint(ctx.KV, keyGenesis, uint64(s.Minted))
	return nil
}
