package exchange

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// InitGenesis implements module.Genesis: the parameters (defaults when
// the genesis has none).
func (*Keeper) InitGenesis(ctx *module.Context, raw []byte) error {
	if err := module.InitParams(ctx, raw, keyParams, DefaultParams(), Params.Validate); err != nil {
		return fmt.Errorf("exchange: %w", err)
	}
	return nil
}

// ExportGenesis implements module.Exporter: parameters, open orders with
// their indexes, trades and counters. The held funds travel in the bank's
// export (the module account's balances), and the invariant holds the two
// together on the new chain.
func (*Keeper) ExportGenesis(v state.View) (json.RawMessage, error) {
	return module.ExportPrefix(v, Name+"/")
}

// ImportGenesis implements module.Exporter. Orders and trades must decode.
func (*Keeper) ImportGenesis(ctx *module.Context, raw json.RawMessage) error {
	check := module.CheckParams(keyParams, Params.Validate)
	err := module.ImportPrefix(ctx, raw, Name+"/", func(k, v []byte) error {
		switch {
		case bytes.HasPrefix(k, prefixOrder):
			var o Order
			return tx.Unmarshal(v, &o)
		case bytes.HasPrefix(k, prefixTrade):
			var t Trade
			return tx.Unmarshal(v, &t)
		}
		return check(k, v)
	})
	if err != nil {
		return fmt.Errorf("exchange: %w", err)
	}
	return nil
}
