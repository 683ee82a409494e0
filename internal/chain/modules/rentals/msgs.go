package rentals

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypeOpen   = "rentals/open"   // the signer leases a listing for a time
	TypeExtend = "rentals/extend" // the lease's customer pays for more time
	TypeEnd    = "rentals/end"    // the customer or the provider ends the lease now
)

// MsgOpen leases listing Service for DurationS seconds from the block's
// time at its hourly price. MaxAmount, when not zero, is the most the
// customer lets it lock: a lease whose price is above it is refused
// (escrow_too_small) rather than shortened.
type MsgOpen struct {
	_         struct{} `cbor:",toarray"`
	Service   string
	DurationS uint64
	MaxAmount coin.Amount
}

// MsgExtend adds DurationS seconds to lease ID, paying for them now
// (MaxAmount as in MsgOpen).
type MsgExtend struct {
	_         struct{} `cbor:",toarray"`
	ID        string
	DurationS uint64
	MaxAmount coin.Amount
}

// MsgEnd ends lease ID now: the time used is paid, the rest refunded.
type MsgEnd struct {
	_  struct{} `cbor:",toarray"`
	ID string
}

func mustMsg(typ string, body any) tx.Msg {
	m, err := tx.NewMsg(typ, body)
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// NewOpenMsg builds a rentals/open.
func NewOpenMsg(service string, durationS uint64, maxAmount coin.Amount) tx.Msg {
	return mustMsg(TypeOpen, MsgOpen{Service: service, DurationS: durationS, MaxAmount: maxAmount})
}

// NewExtendMsg builds a rentals/extend.
func NewExtendMsg(id string, durationS uint64, maxAmount coin.Amount) tx.Msg {
	return mustMsg(TypeExtend, MsgExtend{ID: id, DurationS: durationS, MaxAmount: maxAmount})
}

// NewEndMsg builds a rentals/end.
func NewEndMsg(id string) tx.Msg { return mustMsg(TypeEnd, MsgEnd{ID: id}) }

// maxIDLen bounds ids in messages and queries (listing ids are at most 64).
const maxIDLen = 64

func checkID(what, id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%w: %s of %d bytes (1 to %d)", ErrInvalidQuery, what, len(id), maxIDLen)
	}
	return nil
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	switch msg.Type {
	case TypeOpen:
		var m MsgOpen
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"service_id": m.Service, "duration_s": m.DurationS, "max_amount": m.MaxAmount}, nil
	case TypeExtend:
		var m MsgExtend
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"lease_id": m.ID, "duration_s": m.DurationS, "max_amount": m.MaxAmount}, nil
	case TypeEnd:
		var m MsgEnd
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"lease_id": m.ID}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}
