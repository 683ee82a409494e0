package bank

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TypeSend is the message type of a transfer.
const TypeSend = "bank/send"

// MsgSend moves Amount from the signer to To.
type MsgSend struct {
	_      struct{} `cbor:",toarray"`
	To     []byte   // 20-byte address
	Amount coin.Amount
}

// NewSendMsg builds a transfer message.
func NewSendMsg(to address.Address, amount coin.Amount) tx.Msg {
	m, err := tx.NewMsg(TypeSend, MsgSend{To: to[:], Amount: amount})
	if err != nil { // a fixed struct of plain fields always encodes
		panic(err)
	}
	return m
}

// DecodeSend decodes and validates a transfer body.
func DecodeSend(m tx.Msg) (address.Address, coin.Amount, error) {
	var b MsgSend
	if err := m.DecodeBody(&b); err != nil {
		return address.Address{}, 0, err
	}
	to, err := address.FromBytes(b.To)
	if err != nil {
		return address.Address{}, 0, fmt.Errorf("%w: recipient: %v", tx.ErrInvalidMsg, err)
	}
	if b.Amount == 0 {
		return address.Address{}, 0, fmt.Errorf("%w: amount must be positive", ErrZeroAmount)
	}
	return to, b.Amount, nil
}
