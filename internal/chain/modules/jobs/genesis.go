package jobs

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
			return fmt.Errorf("jobs: genesis: %w", err)
		}
	}
	if err := p.Validate(); err != nil {
		return err
	}
	b, err := tx.Marshal(p)
	if err != nil {
		return err
	}
	ctx.KV.Set(keyParams, b)
	return nil
}
