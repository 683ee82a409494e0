package bank

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	switch msg.Type {
	case TypeSend:
		to, denom, amount, err := DecodeSendDenom(msg)
		if err != nil {
			return err
		}
		// Nobody holds the all-zero address's key (it is what an unset
		// address decodes to): coins sent there are lost, almost always by
		// mistake. Refused here, not in DecodeSend, so that describing an
		// old transaction still works.
		if to.IsZero() {
			return fmt.Errorf("%w: recipient %s", ErrZeroAddress, to)
		}
		if name, ok := k.blocked[to]; ok {
			return fmt.Errorf("%w: %s is the module account %s", ErrModuleAccount, to, name)
		}
		if err := k.SendDenom(ctx.KV, ctx.Signer, to, denom, amount); err != nil {
			return err
		}
		ctx.Touch(to)
		return nil
	default:
		return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
	}
}

// Describe implements module.Describer.
func (k *Keeper) Describe(msg tx.Msg) (any, error) {
	if msg.Type != TypeSend {
		return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
	}
	to, denom, amt, err := DecodeSendDenom(msg)
	if err != nil {
		return nil, err
	}
	if denom != Native {
		// Another denomination's amount is in its base units, not AITBC.
		return map[string]any{"to": to, "amount": amt, "denom": denom}, nil
	}
	return map[string]any{"to": to, "amount": amt}, nil
}
