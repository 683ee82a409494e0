package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/rpc"
)

// ChainView is everything the coordinator reads from the chain, in the
// coordinator's own terms. Every answer describes committed state; the
// payment gate relies on that (see package lifecycle). FromRPC adapts a
// node's REST client; this file is the one place where the node's types
// are converted.
type ChainView interface {
	// Params returns the chain id and the jobs module's parameters.
	Params(ctx context.Context) (ChainParams, error)
	// Job returns a job's committed record, or an error wrapping
	// jobs.ErrJobNotFound when the chain has none.
	Job(ctx context.Context, id string) (ChainJob, error)
	// Deposit returns a customer's committed deposit with a coordinator
	// (zero amounts when there is none).
	Deposit(ctx context.Context, customer, coordinator address.Address) (ChainDeposit, error)
	// Miners returns the miner registry.
	Miners(ctx context.Context) ([]ChainMiner, error)
}

// ChainParams are the chain facts the coordinator works with.
type ChainParams struct {
	ChainID string
	Jobs    jobs.Params
	// ReleaseDelay is how long after the block that announces it a
	// deposit withdrawal, or a customer's cancellation of an open job,
	// takes effect (the jobs module's release_delay). Zero: at once.
	ReleaseDelay time.Duration
}

// Job statuses on chain (ChainJob.Status).
const (
	ChainOpen     = "open"
	ChainAssigned = "assigned"
	ChainSettled  = "settled"
	ChainExpired  = "expired"
	ChainCanceled = "canceled"
)

// ChainJob is a job's committed record on chain.
type ChainJob struct {
	ID          string // 32 hex digits
	Status      string // ChainOpen, ChainAssigned, ...
	Customer    address.Address
	Coordinator address.Address
	Miner       *address.Address // the assigned miner
	Model       string
	PromptHash  string // hex
	MaxTokens   uint64
	Escrow      coin.Amount
	Expires     time.Time // the chain refunds an unsettled job then
	CancelAt    time.Time // a customer's cancellation takes effect then (zero: none announced)
	Paid        coin.Amount
	Fee         coin.Amount
	Refund      coin.Amount
	Height      int64     // of the committed state answering (0: unknown)
	BlockTime   time.Time // of the committed state answering (zero: unknown)
}

// ChainDeposit is a customer's committed deposit with a coordinator.
type ChainDeposit struct {
	Amount      coin.Amount // what create_for may draw on, including what is being withdrawn
	Withdrawing coin.Amount // announced for withdrawal
	WithdrawAt  time.Time   // when the withdrawal pays out (zero: none announced)
	Height      int64       // of the committed state answering
	BlockTime   time.Time   // of the committed state answering (zero: unknown)
}

// ChainMiner is a registered miner.
type ChainMiner struct {
	Address     address.Address
	PubKey      string // hex ed25519: verifies the miner's sessions and receipts
	Models      []string
	GPU         string
	GPUMemoryMB uint64
	PricePer1k  coin.Amount
	Stake       coin.Amount
	Status      string // active, unbonding
	JobsSettled uint64
}

// Chain is what the coordinator reads from a node's REST API: the chain's
// identity, and the modules' queries (jobs.QueryJob, miners.QueryAll, ...)
// through GetJSON. *rpc.Client satisfies it; FromRPC turns it into a
// ChainView.
type Chain interface {
	module.Getter
	Chain(ctx context.Context) (rpc.ChainInfo, error)
}

// FromRPC adapts a node's REST client to ChainView, through the jobs and
// miners modules' own query functions.
func FromRPC(c Chain) ChainView { return rpcView{c} }

type rpcView struct{ c Chain }

func (v rpcView) Params(ctx context.Context) (ChainParams, error) {
	ci, err := v.c.Chain(ctx)
	if err != nil {
		return ChainParams{}, err
	}
	p, err := jobs.QueryParams(ctx, v.c)
	if err != nil {
		return ChainParams{}, err
	}
	return ChainParams{ChainID: ci.ChainID, Jobs: p, ReleaseDelay: p.ReleaseDelayDuration()}, nil
}

func (v rpcView) Job(ctx context.Context, id string) (ChainJob, error) {
	j, err := jobs.QueryJob(ctx, v.c, id)
	if err != nil {
		if httpx.IsCode(err, jobs.ErrJobNotFound.Name) {
			return ChainJob{}, fmt.Errorf("chain job %s: %w", id, errors.Join(jobs.ErrJobNotFound, err))
		}
		return ChainJob{}, err
	}
	out := ChainJob{
		ID: j.ID, Status: j.Status, Customer: j.Customer, Coordinator: j.Coordinator, Miner: j.Miner,
		Model: j.Model, PromptHash: j.PromptHash, MaxTokens: j.MaxTokens, Escrow: j.Escrow, Expires: j.Expires,
		Paid: j.Paid, Fee: j.Fee, Refund: j.Refund, Height: j.Height, BlockTime: j.BlockTime,
	}
	if j.CancelAt != nil {
		out.CancelAt = *j.CancelAt
	}
	return out, nil
}

func (v rpcView) Deposit(ctx context.Context, customer, coordinator address.Address) (ChainDeposit, error) {
	d, err := jobs.QueryDeposit(ctx, v.c, customer, coordinator)
	if err != nil {
		return ChainDeposit{}, err
	}
	out := ChainDeposit{Amount: d.Amount, Withdrawing: d.Withdrawing, Height: d.Height, BlockTime: d.BlockTime}
	if d.WithdrawAt != nil {
		out.WithdrawAt = *d.WithdrawAt
	}
	return out, nil
}

func (v rpcView) Miners(ctx context.Context) ([]ChainMiner, error) {
	l, err := miners.QueryAll(ctx, v.c)
	if err != nil {
		return nil, err
	}
	out := make([]ChainMiner, 0, len(l.Miners))
	for _, m := range l.Miners {
		out = append(out, ChainMiner{Address: m.Address, PubKey: m.PubKey, Models: m.Models, GPU: m.GPU, GPUMemoryMB: m.GPUMemoryMB,
			PricePer1k: m.PricePer1k, Stake: m.Stake, Status: m.Status, JobsSettled: m.JobsSettled})
	}
	return out, nil
}
