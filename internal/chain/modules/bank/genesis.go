package bank

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

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
//
// Balances and books of other denominations must name a denomination this
// chain registers: a record of one it does not know would be money no
// invariant counts.
func (k *Keeper) ImportGenesis(ctx *module.Context, raw json.RawMessage) error {
	known := func(d string) bool { _, ok := k.denoms[d]; return ok }
	err := module.ImportPrefix(ctx, raw, Name+"/", func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("an amount is 8 bytes, this is %d", len(v))
		}
		if bytes.HasPrefix(k, BalancePrefix) && len(k) != len(BalancePrefix)+address.Len {
			return fmt.Errorf("a balance's key ends in a %d-byte address", address.Len)
		}
		if err := checkDenomKey(k, known); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bank: %w", err)
	}
	return nil
}

// checkDenomKey refuses a record of another denomination that is not
// registered, or whose key is malformed.
func checkDenomKey(k []byte, known func(string) bool) error {
	switch {
	case bytes.HasPrefix(k, denomBalancePrefix):
		rest := k[len(denomBalancePrefix):]
		if len(rest) < address.Len+1 || rest[len(rest)-address.Len-1] != '/' {
			return fmt.Errorf("a %s balance's key ends in /<%d-byte address>", rest, address.Len)
		}
		if d := string(rest[:len(rest)-address.Len-1]); !known(d) {
			return fmt.Errorf("%w: %q", ErrUnknownDenom, d)
		}
	case bytes.HasPrefix(k, denomSupplyPrefix):
		d, what, _ := strings.Cut(string(k[len(denomSupplyPrefix):]), "/")
		if !known(d) {
			return fmt.Errorf("%w: %q", ErrUnknownDenom, d)
		}
		if what != "supply" && what != "minted" && what != "burned" {
			return fmt.Errorf("unknown %s supply record %q", d, what)
		}
	}
	return nil
}
