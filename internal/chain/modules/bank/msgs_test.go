package bank

import (
	"bytes"
	"math"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// generic decodes a transfer body with the CBOR decoder alone.
func generic(body []byte) (MsgSend, error) {
	var b MsgSend
	err := tx.Msg{Type: TypeSend, Body: body}.DecodeBody(&b)
	return b, err
}

// sameAnswer fails when parseSend accepts body but the decoder refuses it
// or reads different values.
func sameAnswer(t *testing.T, body []byte) bool {
	t.Helper()
	to, amount, ok := parseSend(body)
	if !ok {
		return false
	}
	g, err := generic(body)
	if err != nil {
		t.Fatalf("body %x: parseSend accepted it, the decoder refused: %v", body, err)
	}
	if !bytes.Equal(g.To, to) || g.Amount != amount {
		t.Fatalf("body %x: parseSend %x %d, decoder %x %d", body, to, amount, g.To, g.Amount)
	}
	return true
}

// TestParseSendTakesEveryEncodedTransfer: the fast path must accept the
// encoding of every transfer this node builds (amounts at each integer
// width boundary), with the decoder's values.
func TestParseSendTakesEveryEncodedTransfer(t *testing.T) {
	to := address.Address{1, 2, 3}
	for _, a := range []uint64{1, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64} {
		m := NewSendMsg(to, coin.Amount(a))
		if !sameAnswer(t, m.Body) {
			t.Fatalf("amount %d: canonical body %x not taken by the fast path", a, m.Body)
		}
	}
}

// TestParseSendLeavesNonCanonicalToTheDecoder: longer-than-needed integers,
// other lengths and trailing bytes are not taken.
func TestParseSendLeavesNonCanonicalToTheDecoder(t *testing.T) {
	addr := bytes.Repeat([]byte{7}, 20)
	head := append([]byte{0x82, 0x54}, addr...)
	for _, tail := range [][]byte{
		{0x18, 0x05},             // 5 in two bytes
		{0x19, 0x00, 0xff},       // 255 in three
		{0x1a, 0, 0, 0xff, 0xff}, // 65535 in five
		{0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
		{0x05, 0x00}, // trailing byte
		{},
		{0x20}, // negative integer
	} {
		if _, _, ok := parseSend(append(append([]byte(nil), head...), tail...)); ok {
			t.Fatalf("tail %x taken by the fast path", tail)
		}
	}
}

// FuzzParseSendMatchesDecoder: on any bytes the fast path either declines
// or agrees with the CBOR decoder.
func FuzzParseSendMatchesDecoder(f *testing.F) {
	f.Add([]byte(NewSendMsg(address.Address{9}, 1000).Body))
	f.Add([]byte(NewSendMsg(address.Address{9}, math.MaxUint64).Body))
	f.Add([]byte{0x82, 0x54})
	f.Fuzz(func(t *testing.T, body []byte) { sameAnswer(t, body) })
}
