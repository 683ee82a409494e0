package devnet

import (
	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

func depositMsg(coord address.Address, amount coin.Amount) (tx.Msg, error) {
	return tx.NewMsg(jobs.TypeDeposit, jobs.MsgDeposit{Coordinator: coord[:], Amount: amount})
}
