package multisig

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
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
	if err := module.ImportPrefix(ctx, raw, Name+"/", module.CheckParams(keyParams, Params.Validate)); err != nil {
		return fmt.Errorf("multisig: %w", err)
	}
	return nil
}

// GenesisAccount is a multisig account that exists from genesis. An
// account another module names (the treasury's admin) is created here, so
// that nobody can take its name first with other signers.
type GenesisAccount struct {
	Name      string            `json:"name"`
	Threshold uint32            `json:"threshold"`
	Signers   []address.Address `json:"signers"`
}

// genesisAccounts creates the "accounts" of the module's genesis entry
// ({"expiry_blocks": ..., "accounts": [...]}), each checked as
// multisig/create checks one.
func (k *Keeper) genesisAccounts(ctx *module.Context, raw []byte) error {
	if raw == nil {
		return nil
	}
	var g struct {
		Accounts []GenesisAccount `json:"accounts"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return fmt.Errorf("multisig: genesis accounts: %w", err)
	}
	for _, a := range g.Accounts {
		m := MsgCreate{Name: a.Name, Threshold: a.Threshold}
		for _, s := range a.Signers {
			if s.IsZero() {
				return fmt.Errorf("multisig: genesis account %q: %w: a signer is missing", a.Name, ErrInvalid)
			}
			m.Signers = append(m.Signers, bytes.Clone(s[:]))
		}
		if err := k.create(ctx, m); err != nil {
			return fmt.Errorf("multisig: genesis account %q: %w", a.Name, err)
		}
	}
	return nil
}
