package audits

import (
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// InitGenesis implements module.Genesis: the parameters, defaults
// overridden by the genesis entry; no verifiers, no checks.
func (*Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	if err := module.InitParams(ctx, raw, keyParams, DefaultParams(), Params.Validate); err != nil {
		return fmt.Errorf("audits: %w", err)
	}
	return nil
}

// ExportGenesis implements module.Exporter: every record of the module —
// parameters, verifiers, open and finished checks with their deadlines,
// miners' records — so open checks continue on the new chain.
func (*Keeper) ExportGenesis(v state.View) (json.RawMessage, error) {
	return module.ExportPrefix(v, Name+"/")
}

// ImportGenesis implements module.Exporter: the records of an exported
// genesis, in place of InitGenesis; the parameters must still be valid.
func (*Keeper) ImportGenesis(ctx *module.Context, raw json.RawMessage) error {
	if err := module.ImportPrefix(ctx, raw, Name+"/", module.CheckParams(keyParams, Params.Validate)); err != nil {
		return fmt.Errorf("audits: %w", err)
	}
	return nil
}
