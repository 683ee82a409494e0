package agents

import (
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// InitGenesis implements module.Genesis: the parameters (the genesis entry
// may set active_window_blocks and oracles); no agents.
func (*Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	if err := module.InitParams(ctx, raw, keyParams, DefaultParams(), Params.Validate); err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	return nil
}

// ExportGenesis implements module.Exporter: every record.
func (*Keeper) ExportGenesis(v state.View) (json.RawMessage, error) {
	return module.ExportPrefix(v, Name+"/")
}

// ImportGenesis implements module.Exporter.
func (*Keeper) ImportGenesis(ctx *module.Context, raw json.RawMessage) error {
	if err := module.ImportPrefix(ctx, raw, Name+"/", module.CheckParams(keyParams, Params.Validate)); err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	return nil
}
