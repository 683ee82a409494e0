package node

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/jobs"
	"github.com/aitbc/aitbc/internal/chain/miners"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/rpc"
)

// Query errors of the market modules.
var (
	ErrMinerNotFound = errors.New("miner not found")
	ErrJobNotFound   = errors.New("job not found")
	ErrBadID         = errors.New("invalid id")
)

func minerJSON(m *miners.Miner) rpc.Miner {
	out := rpc.Miner{
		Address: m.Addr(), PubKey: hex.EncodeToString(m.PubKey), Models: m.Caps.Models, GPU: m.Caps.GPU,
		GPUMemoryMB: m.Caps.GPUMemoryMB, PricePer1k: m.Caps.PricePer1k, Endpoint: m.Caps.Endpoint, Stake: m.Stake,
		Status: "active", Registered: m.Registered, LastHeartbeat: time.Unix(m.LastHeartbeat, 0).UTC(),
		JobsSettled: m.JobsSettled, TokensOut: m.TokensOut,
	}
	if m.Status == miners.StatusUnbonding {
		out.Status, out.UnbondAt = "unbonding", m.UnbondAt
	}
	return out
}

// Miners lists every registered miner.
func (n *Node) Miners() (rpc.MinerList, error) {
	out := rpc.MinerList{Miners: []rpc.Miner{}}
	err := n.app.Committed(func(r state.Reader, h int64) error {
		out.Height = h
		st := r.(*state.Store)
		var derr error
		err := st.Iterate(miners.KeyPrefix, false, func(_, v []byte) bool {
			m, err := miners.Decode(v)
			if err != nil {
				derr = err
				return false
			}
			out.Miners = append(out.Miners, minerJSON(m))
			return true
		})
		if derr != nil {
			return derr
		}
		return err
	})
	return out, err
}

// Miner returns one miner.
func (n *Node) Miner(a address.Address) (rpc.Miner, error) {
	var out rpc.Miner
	err := n.app.Committed(func(r state.Reader, _ int64) error {
		m, err := n.app.Miners().Get(r, a)
		if err != nil {
			return err
		}
		if m == nil {
			return fmt.Errorf("%w: %s", ErrMinerNotFound, a)
		}
		out = minerJSON(m)
		return nil
	})
	return out, err
}

// ParseJobID accepts 32 hex digits (with or without 0x).
func ParseJobID(s string) ([]byte, error) {
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != jobs.IDLen {
		return nil, fmt.Errorf("%w: job id must be %d hex digits", ErrBadID, 2*jobs.IDLen)
	}
	return b, nil
}

func jobJSON(j *jobs.Job) rpc.Job {
	out := rpc.Job{
		ID: hex.EncodeToString(j.ID), Status: jobs.StatusName(j.Status), Customer: j.CustomerAddr(),
		Coordinator: j.CoordinatorAddr(), Model: j.Model, PromptHash: hex.EncodeToString(j.PromptHash),
		MaxTokens: j.MaxTokens, Escrow: j.Escrow, FromDeposit: j.FromDeposit, Created: j.Created,
		Expires: j.ExpiresAt(), PricePer1k: j.PricePer1k, Assignments: j.Assignments, Paid: j.Paid,
		Fee: j.Fee, Refund: j.Refund, Settled: j.Settled,
	}
	if len(j.Miner) == address.Len {
		m := j.MinerAddr()
		out.Miner = &m
	}
	if len(j.ReceiptHash) > 0 {
		out.ReceiptHash = hex.EncodeToString(j.ReceiptHash)
	}
	return out
}

// Job returns a job's on-chain record.
func (n *Node) Job(id string) (rpc.Job, error) {
	b, err := ParseJobID(id)
	if err != nil {
		return rpc.Job{}, err
	}
	var out rpc.Job
	err = n.app.Committed(func(r state.Reader, _ int64) error {
		j, err := n.app.Jobs().Get(r, b)
		if err != nil {
			return err
		}
		if j == nil {
			return fmt.Errorf("%w: %s", ErrJobNotFound, id)
		}
		out = jobJSON(j)
		return nil
	})
	return out, err
}

// Deposit returns a customer's deposit with a coordinator.
func (n *Node) Deposit(customer, coordinator address.Address) (rpc.Deposit, error) {
	out := rpc.Deposit{Customer: customer, Coordinator: coordinator}
	err := n.app.Committed(func(r state.Reader, h int64) error {
		var err error
		out.Height = h
		out.Amount, err = n.app.Jobs().Deposit(r, customer, coordinator)
		return err
	})
	return out, err
}

// Receipt reports whether a receipt hash is anchored by a settlement.
func (n *Node) Receipt(hash string) (rpc.ReceiptAnchor, error) {
	b, err := hex.DecodeString(trim0x(hash))
	if err != nil || len(b) != 32 {
		return rpc.ReceiptAnchor{}, fmt.Errorf("%w: receipt hash must be 64 hex digits", ErrBadID)
	}
	var h [32]byte
	copy(h[:], b)
	out := rpc.ReceiptAnchor{ReceiptHash: hex.EncodeToString(b)}
	err = n.app.Committed(func(r state.Reader, _ int64) error {
		id, err := r.Get(jobs.KeyReceipt(h))
		if err != nil || id == nil {
			return err
		}
		j, err := n.app.Jobs().Get(r, id)
		if err != nil || j == nil {
			return err
		}
		out.Anchored, out.JobID, out.Height = true, hex.EncodeToString(id), j.Settled
		return nil
	})
	return out, err
}

func trim0x(s string) string {
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		return s[2:]
	}
	return s
}
