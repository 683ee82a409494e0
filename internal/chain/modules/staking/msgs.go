package staking

import (
	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypeStake      = "staking/stake"
	TypeUnstake    = "staking/unstake"
	TypeCommission = "staking/commission"
)

// MsgStake moves Amount from the signer's balance into a delegation to
// Operator.
type MsgStake struct {
	_        struct{} `cbor:",toarray"`
	Operator []byte
	Amount   coin.Amount
}

// MsgUnstake starts unbonding Amount of the signer's delegation to
// Operator.
type MsgUnstake MsgStake

// MsgCommission sets the signer's commission (it must be an operator),
// effective after the next epoch's payout.
type MsgCommission struct {
	_   struct{} `cbor:",toarray"`
	Bps uint64
}

func must(m tx.Msg, err error) tx.Msg {
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// NewStakeMsg builds a stake of amount to operator.
func NewStakeMsg(operator address.Address, amount coin.Amount) tx.Msg {
	return must(tx.NewMsg(TypeStake, MsgStake{Operator: operator[:], Amount: amount}))
}

// NewUnstakeMsg builds an unstake of amount from operator.
func NewUnstakeMsg(operator address.Address, amount coin.Amount) tx.Msg {
	return must(tx.NewMsg(TypeUnstake, MsgUnstake{Operator: operator[:], Amount: amount}))
}

// NewCommissionMsg builds a commission change.
func NewCommissionMsg(bps uint64) tx.Msg {
	return must(tx.NewMsg(TypeCommission, MsgCommission{Bps: bps}))
}
