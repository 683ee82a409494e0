package jobs

import (
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/state"

	"github.com/aitbc/aitbc/internal/chain/module"
)

// InitGenesis implements module.Genesis: the parameters, defaults
// overridden by the genesis entry.
func (k *Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	if err := module.InitParams(ctx, raw, keyParams, DefaultParams(), Params.Validate); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	return k.initPrivate(ctx, raw) // the verifying key of private jobs, if any (private.go)
}

// ExportGenesis implements module.Exporter: every record of the module,
// parameters included (aitbc chain export).
func (*Keeper) ExportGenesis(v state.View) (json.RawMessage, error) {
	return module.ExportPrefix(v, Name+"/")
}

// ImportGenesis implements module.Exporter: the records of an exported
// genesis, in place of InitGenesis; the parameters must still be valid.
func (*Keeper) ImportGenesis(ctx *module.Context, raw json.RawMessage) error {
	if err := module.ImportPrefix(ctx, raw, Name+"/", module.CheckParams(keyParams, Params.Validate)); err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	return nil
}
