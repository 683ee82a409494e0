package walletd

import (
	"context"
	"errors"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// WalletSender lets a daemon (the coordinator, a miner) sign its own
// transactions with one wallet of a Service: it unlocks the wallet and
// unlocks it again whenever the unlock timed out, so a daemon that runs for
// days keeps signing. It holds the password in memory for that.
type WalletSender struct {
	S        *Service
	Name     string
	Password string
}

// Send signs msg with the wallet and submits it (chain minimum fee),
// returning the transaction hash.
func (w WalletSender) Send(ctx context.Context, msg tx.Msg) (string, error) {
	sub, err := w.S.SignAndSubmit(ctx, w.Name, "", msg, 0)
	if errors.Is(err, ErrLocked) {
		if _, uerr := w.S.unlock(w.Name, w.Password, MaxUnlockTimeout, true); uerr != nil {
			return "", uerr
		}
		sub, err = w.S.SignAndSubmit(ctx, w.Name, "", msg, 0)
	}
	return sub.TxHash, err
}
