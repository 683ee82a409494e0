package coordinator

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
)

type opKind int

const (
	opCreate opKind = iota + 1 // jobs/create_for from the tenant's deposit
	opAssign                   // jobs/assign
	opSettle                   // jobs/settle with the receipt
)

func (k opKind) String() string {
	return [...]string{"", "create", "assign", "settle"}[k]
}

type chainOp struct {
	kind    opKind
	jobID   string
	miner   address.Address
	attempt int
}

func (s *Service) enqueueLocked(op chainOp) {
	select {
	case s.chainOps <- op:
	default:
		// Full: the follow-up loop notices jobs whose transactions are
		// missing and enqueues them again.
		s.log.Warn("chain queue full", "op", op.kind.String(), "job", op.jobID)
		if op.kind == opSettle {
			if lj := s.live[op.jobID]; lj != nil {
				lj.settling = false
			}
		}
	}
}

// chainWriter sends the coordinator's transactions one at a time, in the
// order they were queued; the Sender numbers them.
func (s *Service) chainWriter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-s.chainOps:
			s.runOp(ctx, op)
		}
	}
}

func (s *Service) runOp(ctx context.Context, op chainOp) {
	s.mu.Lock()
	lj := s.live[op.jobID]
	if lj == nil {
		s.mu.Unlock()
		return
	}
	j := lj.job
	id, _ := hex.DecodeString(j.ID)
	var msg tx.Msg
	var err error
	if op.kind == opCreate {
		s.mu.Unlock()
		// Created already (a create sent before a restart that did land)?
		if _, err := jobs.QueryJob(ctx, s.cfg.Chain, op.jobID); err == nil {
			s.mu.Lock()
			if lj := s.live[op.jobID]; lj != nil && !lj.job.OnChain {
				lj.job.OnChain = true
				s.unreserveLocked(lj)
				s.persistLocked(ctx, lj.job)
			}
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		if lj = s.live[op.jobID]; lj == nil {
			s.mu.Unlock()
			return
		}
		j = lj.job
	}
	switch op.kind {
	case opCreate:
		ph, _ := hex.DecodeString(j.PromptHash)
		msg, err = tx.NewMsg(jobs.TypeCreateFor, jobs.MsgCreateFor{
			Spec: jobs.Spec{ID: id, Model: j.Model, PromptHash: ph, MaxTokens: uint64(j.MaxTokens), MaxPrice: j.MaxPrice,
				TTLSeconds: max(int64(time.Until(j.Expires)/time.Second), s.params.MinTTL)},
			Customer: j.Customer[:],
		})
	case opAssign:
		if j.Miner != op.miner || j.Attempt != op.attempt {
			s.mu.Unlock()
			return // the job moved on before its assignment was sent
		}
		msg, err = tx.NewMsg(jobs.TypeAssign, jobs.MsgAssign{ID: id, Miner: op.miner[:]})
	case opSettle:
		var r *jobs.Receipt
		if r, err = jobs.DecodeReceipt(j.Receipt); err == nil {
			msg, err = tx.NewMsg(jobs.TypeSettle, jobs.MsgSettle{Receipt: *r})
		}
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("build chain tx", "op", op.kind.String(), "job", op.jobID, "err", err)
		return
	}
	hash, err := s.cfg.Sender.Send(ctx, msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	lj = s.live[op.jobID]
	if lj == nil {
		return
	}
	if err != nil {
		s.log.Warn("chain tx refused", "op", op.kind.String(), "job", op.jobID, "err", err)
		if op.kind == opSettle {
			lj.settling = false // the follow-up loop retries
		}
		return
	}
	switch op.kind {
	case opCreate:
		lj.job.CreateTx = hash
	case opAssign:
		lj.job.AssignTx = hash
	case opSettle:
		lj.job.SettleTx = hash
	}
	s.persistLocked(ctx, lj.job)
}

// followLoop refreshes the miner registry and follows jobs on chain: it
// marks deposit jobs on chain once created, finishes settled and expired
// ones, and retries settlements that did not land.
func (s *Service) followLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RefreshEvery)
	defer t.Stop()
	for {
		s.refreshRegistry(ctx)
		s.followJobs(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) refreshRegistry(ctx context.Context) {
	list, err := miners.QueryAll(ctx, s.cfg.Chain)
	if err != nil {
		s.log.Warn("miner registry", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.registry)
	for _, m := range list.Miners {
		s.registry[m.Address] = m
	}
	for a, mc := range s.miners {
		if reg, ok := s.registry[a]; !ok || reg.Status != "active" {
			s.dropLocked(mc, "no longer an active miner on chain")
		}
	}
}

// settleRetryAfter is how long a submitted settlement may take to commit
// before it is sent again.
const settleRetryAfter = 15 * time.Second

func (s *Service) followJobs(ctx context.Context) {
	var follow []string
	s.mu.Lock()
	for id, lj := range s.live {
		j := lj.job
		if (j.Payment == "deposit" && !j.OnChain && j.CreateTx != "") || j.Status == store.StatusCompleted {
			follow = append(follow, id)
		}
	}
	s.mu.Unlock()
	now := s.cfg.Now()
	for _, id := range follow {
		cj, err := jobs.QueryJob(ctx, s.cfg.Chain, id)
		if err != nil {
			if !httpx.IsCode(err, "job_not_found") {
				s.log.Warn("follow job", "job", id, "err", err)
				continue
			}
			// Not on chain: its create never landed (lost with a mempool).
			// A completed deposit job is created, assigned and settled anew.
			s.mu.Lock()
			if lj := s.live[id]; lj != nil && lj.job.Status == store.StatusCompleted && lj.job.Payment == "deposit" &&
				!lj.settling && now.Before(lj.job.Expires) {
				lj.settling = true
				lj.job.Updated = now.UTC()
				s.enqueueLocked(chainOp{kind: opCreate, jobID: id})
				s.enqueueLocked(chainOp{kind: opAssign, jobID: id, miner: lj.job.Miner, attempt: lj.job.Attempt})
				s.enqueueLocked(chainOp{kind: opSettle, jobID: id})
			}
			s.mu.Unlock()
			continue
		}
		s.mu.Lock()
		lj := s.live[id]
		if lj == nil {
			s.mu.Unlock()
			continue
		}
		j := lj.job
		if !j.OnChain {
			j.OnChain = true
			s.unreserveLocked(lj)
			s.persistLocked(ctx, j)
		}
		switch {
		case cj.Status == "settled":
			j.Paid, j.FeeBurned, j.Refund = cj.Paid, cj.Fee, cj.Refund
			s.finishLocked(ctx, lj, store.StatusSettled, "")
		case cj.Status == "expired":
			s.finishLocked(ctx, lj, store.StatusExpired, "the TTL passed before settlement; the escrow was refunded on chain")
		case j.Status == store.StatusCompleted && !lj.settling && now.Before(j.Expires):
			// The chain must show this miner assigned before it settles:
			// an assignment lost with a mempool is sent again.
			lj.settling = true
			j.Updated = now.UTC()
			if cj.Miner == nil || *cj.Miner != j.Miner {
				s.enqueueLocked(chainOp{kind: opAssign, jobID: j.ID, miner: j.Miner, attempt: j.Attempt})
			}
			s.enqueueLocked(chainOp{kind: opSettle, jobID: j.ID})
		case j.Status == store.StatusCompleted && lj.settling && now.Sub(j.Updated) > settleRetryAfter:
			lj.settling = false // not settled in time: the next pass drives it again from the chain's view
		}
		s.mu.Unlock()
	}
}
