package miners

import (
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// InitGenesis implements module.Genesis.
func (*Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	p := DefaultParams()
	if raw != nil {
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("miners: genesis: %w", err)
		}
	}
	if p.UnbondingBlocks < 1 {
		return fmt.Errorf("miners: unbonding_blocks must be at least 1")
	}
	b, err := tx.Marshal(p)
	if err != nil {
		return err
	}
	ctx.KV.Set(keyParams, b)
	return nil
}
