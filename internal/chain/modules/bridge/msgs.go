package bridge

import (
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypeAddress  = "bridge/address"
	TypeAttest   = "bridge/attest"
	TypeWithdraw = "bridge/withdraw"
	TypePaid     = "bridge/paid"
	TypeHalt     = "bridge/halt"
)

// MaxReason bounds a halt's reason.
const MaxReason = 512

// MsgAddress asks for the signer's deposit address.
type MsgAddress struct {
	_ struct{} `cbor:",toarray"`
}

// MsgAttest is an operator's attestation of a deposit.
type MsgAttest struct {
	_         struct{} `cbor:",toarray"`
	Txid      []byte   // 32 bytes, internal byte order (chainhash.Hash)
	Vout      uint32
	Address   string
	Amount    uint64 // satoshis
	BlockHash []byte // 32 bytes
	BlockH    int64
}

// MsgWithdraw burns Amount satoshis of the signer's btc for a payment to To.
type MsgWithdraw struct {
	_      struct{} `cbor:",toarray"`
	To     string
	Amount uint64
}

// MsgPaid records the Bitcoin payment of withdrawal ID.
type MsgPaid struct {
	_    struct{} `cbor:",toarray"`
	ID   uint64
	Txid []byte
}

// MsgHalt halts the bridge.
type MsgHalt struct {
	_      struct{} `cbor:",toarray"`
	Reason string
}

func newMsg(typ string, body any) tx.Msg {
	m, err := tx.NewMsg(typ, body)
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// NewAddressMsg asks for the signer's deposit address.
func NewAddressMsg() tx.Msg { return newMsg(TypeAddress, MsgAddress{}) }

// NewAttestMsg attests a deposit: output vout of txid (chainhash bytes)
// pays amount satoshis to address, in block blockHash at height blockH.
func NewAttestMsg(txid [32]byte, vout uint32, address string, amount uint64, blockHash [32]byte, blockH int64) tx.Msg {
	return newMsg(TypeAttest, MsgAttest{Txid: txid[:], Vout: vout, Address: address, Amount: amount, BlockHash: blockHash[:], BlockH: blockH})
}

// NewWithdrawMsg burns amount satoshis of btc for a payment to a Bitcoin address.
func NewWithdrawMsg(to string, amount uint64) tx.Msg {
	return newMsg(TypeWithdraw, MsgWithdraw{To: to, Amount: amount})
}

// NewPaidMsg records withdrawal id's payment.
func NewPaidMsg(id uint64, txid [32]byte) tx.Msg {
	return newMsg(TypePaid, MsgPaid{ID: id, Txid: txid[:]})
}

// NewHaltMsg halts the bridge.
func NewHaltMsg(reason string) tx.Msg { return newMsg(TypeHalt, MsgHalt{Reason: reason}) }
