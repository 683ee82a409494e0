package multisig

import (
	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypeCreate  = "multisig/create"
	TypePropose = "multisig/propose"
	TypeSign    = "multisig/sign"
)

// MsgCreate creates a multisig account.
type MsgCreate struct {
	_         struct{} `cbor:",toarray"`
	Name      string
	Threshold uint32
	Signers   [][]byte
}

// MsgPropose proposes Msg for the account Name to execute; the proposer's
// approval counts.
type MsgPropose struct {
	_    struct{} `cbor:",toarray"`
	Name string
	Msg  tx.Msg
}

// MsgSign approves proposal ID of account Name.
type MsgSign struct {
	_    struct{} `cbor:",toarray"`
	Name string
	ID   uint64
}

func must(m tx.Msg, err error) tx.Msg {
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// NewCreateMsg builds the creation of account name.
func NewCreateMsg(name string, threshold uint32, signers []address.Address) tx.Msg {
	raw := make([][]byte, len(signers))
	for i, s := range signers {
		raw[i] = append([]byte(nil), s[:]...)
	}
	return must(tx.NewMsg(TypeCreate, MsgCreate{Name: name, Threshold: threshold, Signers: raw}))
}

// NewProposeMsg builds a proposal that account name execute msg.
func NewProposeMsg(name string, msg tx.Msg) tx.Msg {
	return must(tx.NewMsg(TypePropose, MsgPropose{Name: name, Msg: msg}))
}

// NewSignMsg builds the approval of proposal id of account name.
func NewSignMsg(name string, id uint64) tx.Msg {
	return must(tx.NewMsg(TypeSign, MsgSign{Name: name, ID: id}))
}
