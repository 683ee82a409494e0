package jobs

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// View is GET /api/v1/jobs/{id}: the on-chain record of a job, with the
// height and block time of the committed state it was read from.
type View struct {
	ID          string           `json:"job_id"` // 32 hex digits
	Status      string           `json:"status"` // open, assigned, settled, expired, canceled
	Customer    address.Address  `json:"customer"`
	Coordinator address.Address  `json:"coordinator"`
	Miner       *address.Address `json:"miner,omitempty"`
	Model       string           `json:"model"`
	PromptHash  string           `json:"prompt_hash"`
	MaxTokens   uint64           `json:"max_tokens"`
	Escrow      coin.Amount      `json:"escrow"`
	FromDeposit bool             `json:"from_deposit"`
	Created     int64            `json:"created_height"`
	Expires     time.Time        `json:"expires"`
	CancelAt    *time.Time       `json:"cancel_at,omitempty"` // a customer's cancellation takes effect then, unless assigned first
	PricePer1k  coin.Amount      `json:"price_per_1k_tokens"`
	Assignments uint32           `json:"assignments"`
	Paid        coin.Amount      `json:"paid"`
	Fee         coin.Amount      `json:"protocol_fee"` // split with the block's fees: burn, treasury, proposer (its burned part is in the chain's burned total)
	Commission  coin.Amount      `json:"commission"`   // to the coordinator
	Refund      coin.Amount      `json:"refund"`
	ReceiptHash string           `json:"receipt_hash,omitempty"`
	Settled     int64            `json:"settled_height,omitempty"`
	Height      int64            `json:"height"`
	BlockTime   time.Time        `json:"block_time"`
}

// ViewOf describes a job record read at q.
func ViewOf(j *Job, q module.Query) View {
	out := View{
		ID: hex.EncodeToString(j.ID), Status: StatusName(j.Status), Customer: j.CustomerAddr(),
		Coordinator: j.CoordinatorAddr(), Model: j.Model, PromptHash: hex.EncodeToString(j.PromptHash),
		MaxTokens: j.MaxTokens, Escrow: j.Escrow, FromDeposit: j.FromDeposit, Created: j.Created,
		Expires: j.ExpiresAt(), PricePer1k: j.PricePer1k, Assignments: j.Assignments, Paid: j.Paid,
		Fee: j.Fee, Commission: j.Commission, Refund: j.Refund, Settled: j.Settled, Height: q.Height, BlockTime: q.Time,
	}
	if len(j.Miner) == address.Len {
		m := j.MinerAddr()
		out.Miner = &m
	}
	if len(j.ReceiptHash) > 0 {
		out.ReceiptHash = hex.EncodeToString(j.ReceiptHash)
	}
	if j.CancelAt != 0 {
		t := timeUnix(j.CancelAt)
		out.CancelAt = &t
	}
	return out
}

// DepositView is GET /api/v1/deposits/{customer}/{coordinator}.
type DepositView struct {
	Customer    address.Address `json:"customer"`
	Coordinator address.Address `json:"coordinator"`
	Amount      coin.Amount     `json:"amount"`      // held; the coordinator's jobs draw on all of it
	Withdrawing coin.Amount     `json:"withdrawing"` // announced for withdrawal
	WithdrawAt  *time.Time      `json:"withdraw_at,omitempty"`
	Spendable   coin.Amount     `json:"spendable"` // amount less withdrawing: what new jobs may reserve
	Height      int64           `json:"height"`
	BlockTime   time.Time       `json:"block_time"`
}

// ReceiptAnchor is GET /api/v1/receipts/{hash}: whether a receipt's hash
// is anchored on chain by a settlement, and for which job.
type ReceiptAnchor struct {
	ReceiptHash string `json:"receipt_hash"`
	Anchored    bool   `json:"anchored"`
	JobID       string `json:"job_id,omitempty"`
	Height      int64  `json:"settled_height,omitempty"`
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/jobs/params", Summary: "the jobs module's parameters", Handle: k.queryParams},
		{Method: "GET", Path: "/api/v1/jobs/{id}", Summary: "a job's on-chain record", Handle: k.queryJob},
		{Method: "GET", Path: "/api/v1/deposits/{customer}/{coordinator}", Summary: "a customer's deposit with a coordinator", Handle: k.queryDeposit},
		{Method: "GET", Path: "/api/v1/receipts/{hash}", Summary: "whether a receipt hash is anchored by a settlement", Handle: k.queryReceipt},
		{Method: "GET", Path: "/api/v1/jobs/{id}/privacy", Summary: "whether a job is private, and its receipt's commitment", Handle: k.queryPrivacy},
	}
}

func (k *Keeper) queryParams(q module.Query, _ module.Request) (any, error) {
	return k.Params(q.State)
}

func (k *Keeper) queryJob(q module.Query, in module.Request) (any, error) {
	id, err := ParseID(in.PathValue("id"))
	if err != nil {
		return nil, err
	}
	j, err := k.Get(q.State, id)
	if err != nil {
		return nil, err
	}
	if j == nil {
		return nil, fmt.Errorf("%w: %x", ErrJobNotFound, id)
	}
	return ViewOf(j, q), nil
}

func (k *Keeper) queryDeposit(q module.Query, in module.Request) (any, error) {
	cust, err := address.Parse(in.PathValue("customer"))
	if err != nil {
		return nil, fmt.Errorf("%w: customer: %v", errs.ErrInvalidAddress, err)
	}
	coord, err := address.Parse(in.PathValue("coordinator"))
	if err != nil {
		return nil, fmt.Errorf("%w: coordinator: %v", errs.ErrInvalidAddress, err)
	}
	d, err := k.Deposit(q.State, cust, coord)
	if err != nil {
		return nil, err
	}
	out := DepositView{Customer: cust, Coordinator: coord, Amount: d.Amount, Withdrawing: d.Withdrawing,
		Spendable: d.Spendable(), Height: q.Height, BlockTime: q.Time}
	if d.WithdrawAt != 0 {
		t := timeUnix(d.WithdrawAt)
		out.WithdrawAt = &t
	}
	return out, nil
}

func (k *Keeper) queryReceipt(q module.Query, in module.Request) (any, error) {
	b, err := hex.DecodeString(trim0x(in.PathValue("hash")))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: receipt hash must be 64 hex digits", ErrInvalidID)
	}
	h := [32]byte(b)
	out := ReceiptAnchor{ReceiptHash: hex.EncodeToString(b)}
	id, err := q.State.Get(keyReceipt(h))
	if err != nil || id == nil {
		return out, err
	}
	j, err := k.Get(q.State, id)
	if err != nil || j == nil {
		return out, err
	}
	out.Anchored, out.JobID, out.Height = true, hex.EncodeToString(id), j.Settled
	return out, nil
}

// QueryJob fetches a job's on-chain record from a node.
func QueryJob(ctx context.Context, g module.Getter, id string) (View, error) {
	var out View
	if _, err := ParseID(id); err != nil {
		return out, err
	}
	return out, g.GetJSON(ctx, "/api/v1/jobs/"+trim0x(id), &out)
}

// QueryDeposit fetches a customer's deposit with a coordinator.
func QueryDeposit(ctx context.Context, g module.Getter, customer, coordinator address.Address) (DepositView, error) {
	var out DepositView
	return out, g.GetJSON(ctx, "/api/v1/deposits/"+customer.String()+"/"+coordinator.String(), &out)
}

// QueryReceipt asks whether a receipt hash (hex) is anchored on chain.
func QueryReceipt(ctx context.Context, g module.Getter, hash string) (ReceiptAnchor, error) {
	var out ReceiptAnchor
	return out, g.GetJSON(ctx, "/api/v1/receipts/"+trim0x(hash), &out)
}

// QueryParams fetches the module's parameters.
func QueryParams(ctx context.Context, g module.Getter) (Params, error) {
	var out Params
	return out, g.GetJSON(ctx, "/api/v1/jobs/params", &out)
}

// Describe implements module.Describer.
func (k *Keeper) Describe(msg tx.Msg) (any, error) {
	specOf := func(s Spec) map[string]any {
		return map[string]any{"job_id": hex.EncodeToString(s.ID), "model": s.Model, "prompt_hash": hex.EncodeToString(s.PromptHash),
			"max_tokens": s.MaxTokens, "max_price": s.MaxPrice, "ttl_s": s.TTLSeconds}
	}
	addr := func(b []byte) any {
		if a, err := address.FromBytes(b); err == nil {
			return a
		}
		return hex.EncodeToString(b)
	}
	switch msg.Type {
	case TypeBatch:
		return k.describeBatch(msg)
	case TypeCreatePrivate, TypeCreateForPrivate, TypeSettlePrivate:
		return k.describePrivate(msg) // private.go
	case TypeCreate:
		var m MsgCreate
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		out := specOf(m.Spec)
		out["coordinator"] = addr(m.Coordinator)
		return out, nil
	case TypeCreateFor:
		var m MsgCreateFor
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		out := specOf(m.Spec)
		out["customer"] = addr(m.Customer)
		return out, nil
	case TypeAssign:
		var m MsgAssign
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"job_id": hex.EncodeToString(m.ID), "miner": addr(m.Miner)}, nil
	case TypeSettle:
		var m MsgSettle
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		r := m.Receipt
		return map[string]any{"job_id": hex.EncodeToString(r.JobID), "miner": addr(r.Miner), "tokens_in": r.TokensIn,
			"tokens_out": r.TokensOut, "price": r.Price, "receipt_hash": r.HashHex()}, nil
	case TypeSettleStages:
		var m MsgSettleStages
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return describeStages(&m), nil
	case TypeCancel:
		var m MsgCancel
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"job_id": hex.EncodeToString(m.ID)}, nil
	case TypeDeposit, TypeWithdraw:
		var m MsgDeposit
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"coordinator": addr(m.Coordinator), "amount": m.Amount}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}
