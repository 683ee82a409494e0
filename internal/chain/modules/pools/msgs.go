package pools

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypeCreate = "pools/create" // the signer operates a new pool
	TypeJoin   = "pools/join"   // the signer (an active miner) joins a pool
	TypeLeave  = "pools/leave"  // the signer leaves its pool
)

// MaxFeeBps is a pool fee of 100%.
const MaxFeeBps = 10_000

// MsgCreate registers a pool called Name with a fee of FeeBps (basis
// points of what the pool earns) to its operator, the signer.
type MsgCreate struct {
	_      struct{} `cbor:",toarray"`
	Name   string
	FeeBps uint64
}

// MsgJoin joins the signer, an active registered miner, to pool Name.
type MsgJoin struct {
	_    struct{} `cbor:",toarray"`
	Name string
}

// MsgLeave takes the signer out of its pool.
type MsgLeave struct {
	_ struct{} `cbor:",toarray"`
}

func mustMsg(typ string, body any) tx.Msg {
	m, err := tx.NewMsg(typ, body)
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// NewCreateMsg builds a pools/create.
func NewCreateMsg(name string, feeBps uint64) tx.Msg {
	return mustMsg(TypeCreate, MsgCreate{Name: name, FeeBps: feeBps})
}

// NewJoinMsg builds a pools/join.
func NewJoinMsg(name string) tx.Msg { return mustMsg(TypeJoin, MsgJoin{Name: name}) }

// NewLeaveMsg builds a pools/leave.
func NewLeaveMsg() tx.Msg { return mustMsg(TypeLeave, MsgLeave{}) }

// CheckName checks a pool name: 1-32 of a-z, 0-9, - and _.
func CheckName(name string) error {
	if len(name) < 1 || len(name) > 32 {
		return fmt.Errorf("%w: %q", ErrName, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %q", ErrName, name)
		}
	}
	return nil
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	switch msg.Type {
	case TypeCreate:
		var m MsgCreate
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"name": m.Name, "fee_bps": m.FeeBps}, nil
	case TypeJoin:
		var m MsgJoin
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"name": m.Name}, nil
	case TypeLeave:
		var m MsgLeave
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}
