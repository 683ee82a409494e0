package pools

import (
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// ExportGenesis implements module.Exporter: every record of the module
// (aitbc chain export).
func (*Keeper) ExportGenesis(v state.View) (json.RawMessage, error) {
	return module.ExportPrefix(v, Name+"/")
}

// ImportGenesis implements module.Exporter: the records of an exported
// genesis, in place of InitGenesis.
func (*Keeper) ImportGenesis(ctx *module.Context, raw json.RawMessage) error {
	if err := module.ImportPrefix(ctx, raw, Name+"/", nil); err != nil {
		return fmt.Errorf("pools: %w", err)
	}
	return nil
}
