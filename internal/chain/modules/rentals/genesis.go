package rentals

import (
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// InitGenesis implements module.Genesis: the parameters, defaults
// overridden by the genesis entry; no leases.
func (*Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	if err := module.InitParams(ctx, raw, keyParams, DefaultParams(), Params.Validate); err != nil {
		return fmt.Errorf("rentals: %w", err)
	}
	return nil
}

// ExportGenesis implements module.Exporter: every record of the module,
// parameters and leases included (aitbc chain export). A lease's times are
// block times, so it keeps running on the new chain from its next block.
func (*Keeper) ExportGenesis(v state.View) (json.RawMessage, error) {
	return module.ExportPrefix(v, Name+"/")
}

// ImportGenesis implements module.Exporter: the records of an exported
// genesis, in place of InitGenesis; the parameters must still be valid.
func (*Keeper) ImportGenesis(ctx *module.Context, raw json.RawMessage) error {
	if err := module.ImportPrefix(ctx, raw, Name+"/", module.CheckParams(keyParams, Params.Validate)); err != nil {
		return fmt.Errorf("rentals: %w", err)
	}
	return nil
}
