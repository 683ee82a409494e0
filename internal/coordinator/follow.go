package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// followLoop refreshes the miner registry and follows live jobs on chain.
func (s *Service) followLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RefreshEvery)
	defer t.Stop()
	for {
		s.refreshRegistry(ctx)
		s.refreshTrust(ctx) // services.go
		s.followJobs(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) refreshRegistry(ctx context.Context) {
	list, err := s.view.Miners(ctx)
	if err != nil {
		s.log.Warn("miner registry", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.registry)
	for _, m := range list {
		s.registry[m.Address] = m
	}
	for a, mc := range s.miners {
		if reg, ok := s.registry[a]; !ok || reg.Status != "active" {
			s.dropLocked(mc, "no longer an active miner on chain")
		}
	}
}

// Re-sending: a transaction not seen committed after this long is sent
// again (it may have been lost with a mempool).
const (
	settleRetryAfter = 15 * time.Second
	createRetryAfter = 15 * time.Second
)

// queuedFollowEvery: a job waiting in the queue is looked up on chain
// only every this many passes (a customer's cancellation of it is safe to
// notice late: its payment window already accounts for it).
const queuedFollowEvery = 10

// followJobs reads the chain's record of every job that still needs the
// chain's word, outside the lock, and turns each answer into lifecycle
// events: payment windows and confirmations, settlement, expiry,
// cancellation. It re-sends what did not land.
func (s *Service) followJobs(ctx context.Context) {
	var ids []string
	s.mu.Lock()
	s.followPass++
	everyPass := s.followPass%queuedFollowEvery == 0
	for id, lj := range s.live {
		j := lj.job
		switch {
		case j.Status == store.StatusCompleted:
		case lj.assignSeen && j.PaymentConfirmed:
			continue // nothing can take its escrow before the TTL; settlement follows completion
		case j.Status == store.StatusQueued && j.OnChain && !everyPass:
			continue
		case j.Payment == "deposit" && !j.OnChain && lj.createSent.IsZero():
			continue // not dispatched yet: nothing of it is on chain to read
		}
		ids = append(ids, id)
	}
	// Ended deposit jobs whose create_for was sent but not seen: if it
	// lands, the escrow leaves the deposit, and the reservation must last
	// until a deposit read shows that.
	ended := map[string]string{} // job id → tenant
	for tenant, tr := range s.reserved {
		for id, r := range tr.closing {
			if !r.created && !r.ended.IsZero() {
				ended[id] = tenant
			}
		}
	}
	s.mu.Unlock()
	for id, tenant := range ended {
		cj, err := s.view.Job(ctx, id)
		if err != nil {
			continue // not on chain (yet): reserved until its TTL
		}
		s.mu.Lock()
		if tr := s.reserved[tenant]; tr != nil {
			if r, ok := tr.closing[id]; ok && !r.created {
				r.created, r.height = true, cj.Height
				tr.closing[id] = r
			}
		}
		s.mu.Unlock()
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		cj, err := s.view.Job(ctx, id)
		if err != nil && !errors.Is(err, jobs.ErrJobNotFound) {
			s.log.Warn("follow job", "job", id, "err", err)
			continue
		}
		s.mu.Lock()
		if lj := s.live[id]; lj != nil {
			if err != nil {
				s.notOnChainLocked(lj)
			} else {
				s.observeLocked(lj, cj)
			}
		}
		s.mu.Unlock()
	}
}

// notOnChainLocked handles a job the chain does not know. A deposit job's
// create_for may still be in a mempool, or lost with one: after a while
// it is sent again (a completed job needs its assignment and settlement
// again too).
func (s *Service) notOnChainLocked(lj *liveJob) {
	j := lj.job
	now := s.cfg.Now()
	if j.Payment != "deposit" || j.OnChain || lj.createSent.IsZero() || now.Sub(lj.createSent) < createRetryAfter || !now.Before(j.Expires) {
		return
	}
	s.sendCreateLocked(lj, true)
	if inFlight := j.Status == store.StatusDispatched || j.Status == store.StatusRunning; inFlight || j.Status == store.StatusCompleted {
		s.sendAssignLocked(lj)
	}
	if j.Status == store.StatusCompleted {
		lj.settling = false
		s.sendSettleLocked(lj)
	}
}

// observeLocked turns the chain's record of a live job into events.
func (s *Service) observeLocked(lj *liveJob, cj ChainJob) {
	j := lj.job
	now := s.cfg.Now()
	switch cj.Status {
	case ChainSettled:
		s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.ChainSettled, Now: now, Settlement: lifecycle.Settlement{Paid: cj.Paid, Fee: cj.Fee, Refund: cj.Refund}})
		return
	case ChainExpired:
		s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.ChainExpired, Now: now})
		return
	case ChainCanceled:
		s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.ChainCanceled, Now: now})
		return
	case ChainOpen, ChainAssigned:
	default:
		s.log.Warn("follow job: unknown chain status", "job", j.ID, "status", cj.Status)
		return
	}
	if j.Payment == "deposit" && !j.OnChain {
		s.createdLocked(j, cj.Height)
	}
	ev := lifecycle.Event{Kind: lifecycle.Window, Now: now, OnChain: true}
	switch {
	case cj.Status == ChainAssigned:
		// Assigned by this coordinator (only it may): no cancellation can
		// refund it any more, the escrow stays until the TTL.
		lj.assignSeen, ev.Confirmed = true, true
	case j.Payment == "deposit":
		// Created from the deposit: the escrow left the customer's reach.
		ev.Confirmed = true
	default:
		ev.Until = lifecycle.WalletWindow(cj.CancelAt, cj.BlockTime, s.releaseDelay, s.cfg.Margin)
	}
	s.applyLocked(lj, ev)
	j = lj.job

	if j.Status != store.StatusCompleted || !lj.resultStored {
		return
	}
	switch {
	case !lj.settling:
		// The chain must show this miner assigned before it settles: an
		// assignment lost with a mempool is sent again.
		if cj.Miner == nil || *cj.Miner != j.Miner {
			s.sendAssignLocked(lj)
		}
		s.sendSettleLocked(lj)
	case now.Sub(lj.settleSent) > settleRetryAfter:
		lj.settling = false // not settled in time: the next pass drives it again from the chain's view
	}
}
