package jobs

import (
	"encoding/hex"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// IDLen is the length of a job id.
const IDLen = 16

// Message types.
const (
	TypeCreate    = "jobs/create"
	TypeCreateFor = "jobs/create_for"
	TypeAssign    = "jobs/assign"
	TypeSettle    = "jobs/settle"
	TypeCancel    = "jobs/cancel"
	TypeDeposit   = "jobs/deposit"
	TypeWithdraw  = "jobs/withdraw"
)

// Spec is what a customer asks for.
type Spec struct {
	_          struct{} `cbor:",toarray"`
	ID         []byte   // 16 random bytes chosen by the client
	Model      string
	PromptHash []byte // SHA-256 of the prompt
	MaxTokens  uint64
	MaxPrice   coin.Amount // locked in escrow: the most the customer pays, fee included
	TTLSeconds int64
}

// MsgCreate creates a job paid from the signer's balance.
type MsgCreate struct {
	_           struct{} `cbor:",toarray"`
	Spec        Spec
	Coordinator []byte // who may assign and settle it
}

// MsgCreateFor creates a job for Customer, paid from the customer's deposit
// with the signing coordinator.
type MsgCreateFor struct {
	_        struct{} `cbor:",toarray"`
	Spec     Spec
	Customer []byte
}

// MsgAssign (re)assigns a job to a miner; only the job's coordinator may.
type MsgAssign struct {
	_     struct{} `cbor:",toarray"`
	ID    []byte
	Miner []byte
}

// MsgSettle settles a job with its miner's receipt; the job's coordinator
// or its assigned miner may submit it.
type MsgSettle struct {
	_       struct{} `cbor:",toarray"`
	Receipt Receipt
}

// MsgCancel refunds an unassigned job: at once when its coordinator asks,
// after the release delay when its customer does.
type MsgCancel struct {
	_  struct{} `cbor:",toarray"`
	ID []byte
}

// MsgDeposit moves funds from the signer's balance into a deposit with a
// coordinator.
type MsgDeposit struct {
	_           struct{} `cbor:",toarray"`
	Coordinator []byte
	Amount      coin.Amount
}

// MsgWithdraw announces that Amount of a deposit goes back to its customer
// once the release delay has passed.
type MsgWithdraw MsgDeposit

func must(m tx.Msg, err error) tx.Msg {
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// NewCreateMsg builds a job paid from the signer's balance, run by coordinator.
func NewCreateMsg(s Spec, coordinator address.Address) tx.Msg {
	return must(tx.NewMsg(TypeCreate, MsgCreate{Spec: s, Coordinator: coordinator[:]}))
}

// NewCreateForMsg builds a job for customer, paid from the customer's
// deposit with the signing coordinator.
func NewCreateForMsg(s Spec, customer address.Address) tx.Msg {
	return must(tx.NewMsg(TypeCreateFor, MsgCreateFor{Spec: s, Customer: customer[:]}))
}

// NewAssignMsg builds an assignment of job id to miner.
func NewAssignMsg(id []byte, miner address.Address) tx.Msg {
	return must(tx.NewMsg(TypeAssign, MsgAssign{ID: id, Miner: miner[:]}))
}

// NewSettleMsg builds a settlement with the miner's receipt.
func NewSettleMsg(r Receipt) tx.Msg {
	return must(tx.NewMsg(TypeSettle, MsgSettle{Receipt: r}))
}

// NewCancelMsg builds a cancellation of job id.
func NewCancelMsg(id []byte) tx.Msg { return must(tx.NewMsg(TypeCancel, MsgCancel{ID: id})) }

// NewDepositMsg builds a deposit of amount with coordinator.
func NewDepositMsg(coordinator address.Address, amount coin.Amount) tx.Msg {
	return must(tx.NewMsg(TypeDeposit, MsgDeposit{Coordinator: coordinator[:], Amount: amount}))
}

// NewWithdrawMsg builds the announcement of a withdrawal from a deposit.
func NewWithdrawMsg(coordinator address.Address, amount coin.Amount) tx.Msg {
	return must(tx.NewMsg(TypeWithdraw, MsgWithdraw{Coordinator: coordinator[:], Amount: amount}))
}

// ParseID accepts a job id as 32 hex digits, with or without 0x.
func ParseID(s string) ([]byte, error) {
	b, err := hex.DecodeString(trim0x(s))
	if err != nil || len(b) != IDLen {
		return nil, fmt.Errorf("%w: job id must be %d hex digits, not %q", ErrInvalidID, 2*IDLen, s)
	}
	return b, nil
}

func trim0x(s string) string {
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		return s[2:]
	}
	return s
}
