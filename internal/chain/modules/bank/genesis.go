package bank

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
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

// ExportGenesis implements module.Exporter: every balance and the supply's
// books (genesis, minted, burned), which carry over unchanged, so that the
// new chain's supply still equals genesis + minted - burned of the old
// one's whole history (docs/ECONOMICS.md).
func (*Keeper) ExportGenesis(v state.View) (json.RawMessage, error) {
	return module.ExportPrefix(v, Name+"/")
}

// ImportGenesis implements module.Exporter: the balances and books of an
// exported genesis, in place of InitGenesis. Every record is an amount.
func (*Keeper) ImportGenesis(ctx *module.Context, raw json.RawMessage) error {
	err := module.ImportPrefix(ctx, raw, Name+"/", func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("an amount is 8 bytes, this is %d", len(v))
		}
		if bytes.HasPrefix(k, BalancePrefix) && len(k) != len(BalancePrefix)+address.Len {
			return fmt.Errorf("a balance's key ends in a %d-byte address", address.Len)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bank: %w", err)
	}
	return nil
}
