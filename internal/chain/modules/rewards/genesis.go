package rewards

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
)

// InitGenesis implements module.Genesis: the parameters, defaults
// overridden by the genesis entry.
func (*Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	if err := module.InitParams(ctx, raw, keyParams, DefaultParams(), Params.Validate); err != nil {
		return fmt.Errorf("rewards: %w", err)
	}
	return nil
}
