package coordinator

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator/chainwriter"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
)

// The coordinator's transactions. Each is queued on the chain writer
// under the lock and built on the writer's goroutine from the job as it
// is then (a job that moved on is skipped); its hash is recorded when the
// node accepts it.

// sendCreateLocked queues the create_for of a deposit job. With
// checkFirst, the writer first asks the chain whether an earlier create
// (sent before a restart) landed.
func (s *Service) sendCreateLocked(lj *liveJob, checkFirst bool) {
	id := lj.job.ID
	lj.createSent = s.cfg.Now()
	s.chain.Enqueue(chainwriter.Op{Kind: "create", JobID: id,
		Build: func(ctx context.Context) (*tx.Msg, error) {
			if checkFirst {
				if _, err := s.view.Job(ctx, id); err == nil {
					return nil, nil // on chain: the follow-up loop records it
				}
			}
			s.mu.Lock()
			lj := s.live[id]
			if lj == nil || lj.job.OnChain {
				s.mu.Unlock()
				return nil, nil
			}
			j := *lj.job
			s.mu.Unlock()
			raw, _ := hex.DecodeString(j.ID)
			ph, _ := hex.DecodeString(j.PromptHash)
			ttl := max(int64(j.Expires.Sub(s.cfg.Now())/time.Second), s.params.MinTTL)
			msg := jobs.NewCreateForMsg(jobs.Spec{ID: raw, Model: j.Model, PromptHash: ph, MaxTokens: uint64(j.MaxTokens), MaxPrice: j.MaxPrice, TTLSeconds: ttl}, j.Customer)
			if j.Private {
				msg = jobs.NewCreateForPrivateMsg(jobs.Spec{ID: raw, Model: j.Model, PromptHash: ph, MaxTokens: uint64(j.MaxTokens), MaxPrice: j.MaxPrice, TTLSeconds: ttl}, j.Customer)
			}
			return &msg, nil
		},
		Done: func(hash string, err error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			lj := s.live[id]
			if lj == nil {
				return
			}
			if err != nil {
				if errors.Is(err, jobs.ErrDepositLow) || httpx.IsCode(err, jobs.ErrDepositLow.Name) {
					// The deposit no longer covers it (it cannot happen
					// while the coordinator's reservations hold, since
					// withdrawals wait the release delay): it can never
					// be paid, nor land.
					s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Unpaid, Why: err.Error()})
					s.dropReservationLocked(lj.job)
				}
				return
			}
			lj.job.CreateTx = hash
			s.persistLocked(lj.job)
		}})
	s.sendBindLocked(lj) // a job for a marketplace service runs under the customer's agreement (services.go)
}

// sendAssignLocked queues the assignment of lj's current attempt.
func (s *Service) sendAssignLocked(lj *liveJob) {
	if lj.job.Split {
		return // a split job settles unassigned (split.go)
	}
	id, miner, attempt := lj.job.ID, lj.job.Miner, lj.job.Attempt
	s.chain.Enqueue(chainwriter.Op{Kind: "assign", JobID: id,
		Build: func(context.Context) (*tx.Msg, error) {
			s.mu.Lock()
			lj := s.live[id]
			stale := lj == nil || lj.job.Miner != miner || lj.job.Attempt != attempt || lifecycle.Final(lj.job.Status)
			s.mu.Unlock()
			if stale {
				return nil, nil // the job moved on before its assignment was sent
			}
			raw, _ := hex.DecodeString(id)
			msg := jobs.NewAssignMsg(raw, miner)
			return &msg, nil
		},
		Done: func(hash string, err error) {
			if err != nil {
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if lj := s.live[id]; lj != nil && lj.job.Miner == miner {
				lj.job.AssignTx = hash
				s.persistLocked(lj.job)
			}
		}})
}

// sendSettleLocked queues the settlement of a completed job whose result
// is durably stored.
func (s *Service) sendSettleLocked(lj *liveJob) {
	if !lj.resultStored || lj.settling {
		return
	}
	lj.settling, lj.settleSent = true, s.cfg.Now()
	id := lj.job.ID
	s.chain.Enqueue(chainwriter.Op{Kind: "settle", JobID: id,
		Build: func(ctx context.Context) (*tx.Msg, error) {
			s.mu.Lock()
			lj := s.live[id]
			var j store.Job
			if lj != nil && lj.job.Status == store.StatusCompleted {
				j = *lj.job
			}
			s.mu.Unlock()
			if j.Receipt == nil || !s.claimSettlement(ctx, id) {
				return nil, nil
			}
			if j.Private {
				return s.privateSettleMsg(ctx, &j) // private.go: proven outside the lock
			}
			return settleMsg(&j) // a miner's receipt, or a split job's stages (split.go)
		},
		Done: func(hash string, err error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			lj := s.live[id]
			if lj == nil {
				return
			}
			if err != nil {
				s.metrics.settleFailures.Inc()
				lj.settling = false // the follow-up loop drives it again
				return
			}
			lj.job.SettleTx = hash
			s.persistLocked(lj.job)
		}})
}

// sendCancelLocked queues the coordinator's cancellation of a job that is
// open on chain and will never run, so its escrow returns now rather than
// at the TTL. (The chain refuses it harmlessly if the job is not open.)
func (s *Service) sendCancelLocked(j *store.Job) {
	id := j.ID // a deposit job's create_for was queued before: the writer keeps them in order
	s.chain.Enqueue(chainwriter.Op{Kind: "cancel", JobID: id,
		Build: func(context.Context) (*tx.Msg, error) {
			raw, _ := hex.DecodeString(id)
			msg := jobs.NewCancelMsg(raw)
			return &msg, nil
		}})
}
