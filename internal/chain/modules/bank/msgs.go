package bank

import (
	"encoding/binary"
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
	if to, amount, ok := parseSend(m.Body); ok {
		b.To, b.Amount = to, amount
	} else if err := m.DecodeBody(&b); err != nil {
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

// MsgSendDenom moves Amount of another denomination than the native one:
// the transfer's body with a third element. A native transfer keeps the
// two-element MsgSend, so its encoding (and the fast path) is unchanged.
type MsgSendDenom struct {
	_      struct{} `cbor:",toarray"`
	To     []byte
	Amount coin.Amount // in the denomination's base units (satoshis for btc)
	Denom  string
}

// NewSendDenomMsg builds a transfer of amount of denom; for the native
// denomination it is NewSendMsg.
func NewSendDenomMsg(to address.Address, denom string, amount coin.Amount) tx.Msg {
	if denom == Native {
		return NewSendMsg(to, amount)
	}
	m, err := tx.NewMsg(TypeSend, MsgSendDenom{To: to[:], Amount: amount, Denom: denom})
	if err != nil {
		panic(err)
	}
	return m
}

// DecodeSendDenom decodes either form of a transfer: the native one
// (denom Native) or one naming another denomination. Naming the native
// denomination in the three-element form is refused: each transfer has
// one encoding.
func DecodeSendDenom(m tx.Msg) (address.Address, string, coin.Amount, error) {
	if len(m.Body) > 0 && m.Body[0] != 0x83 {
		to, amount, err := DecodeSend(m)
		return to, Native, amount, err
	}
	var b MsgSendDenom
	if err := m.DecodeBody(&b); err != nil {
		return address.Address{}, "", 0, err
	}
	to, err := address.FromBytes(b.To)
	if err != nil {
		return address.Address{}, "", 0, fmt.Errorf("%w: recipient: %v", tx.ErrInvalidMsg, err)
	}
	if !ValidDenomName(b.Denom) || b.Denom == Native {
		return address.Address{}, "", 0, fmt.Errorf("%w: denomination %q (the native one uses the two-field form)", tx.ErrInvalidMsg, b.Denom)
	}
	if b.Amount == 0 {
		return address.Address{}, "", 0, fmt.Errorf("%w: amount must be positive", ErrZeroAmount)
	}
	return to, b.Denom, b.Amount, nil
}

// parseSend reads the canonical encoding of a transfer to a 20-byte
// address (a two-element array: the byte string, then the amount as an
// unsigned integer in its shortest form) and nothing else; ok is false for
// any other bytes, which then go through the CBOR decoder and its
// canonical-form check. Every transfer is decoded again in CheckTx, in
// each recheck and in its block, and the decoder's decode-and-re-encode
// check cost several times this. FuzzParseSendMatchesDecoder holds the two
// to the same answers.
func parseSend(b []byte) (to []byte, amount coin.Amount, ok bool) {
	if len(b) < 23 || b[0] != 0x82 || b[1] != 0x40+address.Len {
		return nil, 0, false
	}
	to, rest := b[2:2+address.Len], b[2+address.Len:]
	var v, least uint64 // the value, and the least a canonical encoding of this width holds
	switch h := rest[0]; {
	case h <= 0x17 && len(rest) == 1:
		v = uint64(h)
	case h == 0x18 && len(rest) == 2:
		v, least = uint64(rest[1]), 24
	case h == 0x19 && len(rest) == 3:
		v, least = uint64(binary.BigEndian.Uint16(rest[1:])), 1<<8
	case h == 0x1a && len(rest) == 5:
		v, least = uint64(binary.BigEndian.Uint32(rest[1:])), 1<<16
	case h == 0x1b && len(rest) == 9:
		v, least = binary.BigEndian.Uint64(rest[1:]), 1<<32
	default:
		return nil, 0, false
	}
	if v < least {
		return nil, 0, false
	}
	return to, coin.Amount(v), true
}
