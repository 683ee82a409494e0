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
		to, amount, err := DecodeSend(msg)
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
		if err := k.Send(ctx.KV, ctx.Signer, to, amount); err != nil {
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
	to, amt, err := DecodeSend(msg)
	if err != nil {
		return nil, err
	}
	return map[string]any{"to": to, "amount": amt}, nil
}
