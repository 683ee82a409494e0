package exchange

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypePlace  = "exchange/place"
	TypeCancel = "exchange/cancel"
)

// MsgPlace places an order for the signer.
type MsgPlace struct {
	_      struct{} `cbor:",toarray"`
	Side   Side
	Market bool
	Price  uint64 // msat per AITBC: the limit, or a market order's worst price
	Amount uint64 // AITBC base units
	// Expires is the last height the order trades at; 0: the default
	// lifetime. A market order lives for its block only.
	Expires int64
}

// MsgCancel cancels one of the signer's open orders.
type MsgCancel struct {
	_  struct{} `cbor:",toarray"`
	ID uint64
}

// NewPlaceMsg builds an order.
func NewPlaceMsg(side Side, market bool, price, amount uint64, expires int64) tx.Msg {
	return mustMsg(TypePlace, MsgPlace{Side: side, Market: market, Price: price, Amount: amount, Expires: expires})
}

// NewCancelMsg builds a cancel.
func NewCancelMsg(id uint64) tx.Msg { return mustMsg(TypeCancel, MsgCancel{ID: id}) }

func mustMsg(typ string, body any) tx.Msg {
	m, err := tx.NewMsg(typ, body)
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// DecodePlace decodes and checks what needs no state of an order.
func DecodePlace(m tx.Msg) (MsgPlace, error) {
	var b MsgPlace
	if err := m.DecodeBody(&b); err != nil {
		return b, err
	}
	if b.Side != Buy && b.Side != Sell {
		return b, fmt.Errorf("%w: %d", ErrSide, b.Side)
	}
	if b.Price == 0 {
		return b, fmt.Errorf("%w: zero", ErrPrice)
	}
	if b.Amount == 0 {
		return b, fmt.Errorf("%w: zero", ErrAmount)
	}
	if b.Expires < 0 {
		return b, fmt.Errorf("%w: negative", ErrExpiry)
	}
	return b, nil
}

// DecodeCancel decodes a cancel.
func DecodeCancel(m tx.Msg) (MsgCancel, error) {
	var b MsgCancel
	return b, m.DecodeBody(&b)
}
