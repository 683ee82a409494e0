package coordinator

import (
	"context"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// dispatchLoop places queued jobs whenever something changed (a job, a
// miner, a free slot) and ends overdue jobs every second.
func (s *Service) dispatchLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.TickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
			s.expireDue()
		}
		s.dispatchOnce()
	}
}

// expireDue ends the jobs whose cutoff passed before they completed: no
// more of their output is released, their miners stop, and the chain
// refunds the escrow at the TTL.
func (s *Service) expireDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	for _, lj := range s.live {
		if lj.job.Status != store.StatusCompleted && !now.Before(lifecycle.Cutoff(*lj.job, s.cfg.Margin)) {
			s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Deadline, Now: now})
		}
	}
	// Queues no pass walked (no miner free for their model) drop the jobs
	// that ended here, once a second.
	for model := range s.queue.byModel {
		s.compactQueueLocked(model)
	}
}

// dispatchOnce is one scheduling pass: a snapshot under the lock, a plan
// made without it (the scheduler is pure), and the plan applied under the
// lock, skipping any placement the world changed under.
func (s *Service) dispatchOnce() {
	s.mu.Lock()
	reqs, miners := s.planInputLocked()
	s.mu.Unlock()
	if len(reqs) == 0 {
		return
	}
	plan := s.sched.Plan(reqs, miners)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyPlanLocked(plan)
}

// planInputLocked returns the queued jobs, oldest first per model, of the
// models some connected miner has a free slot for, and the miners as the
// scheduler sees them. A model nobody can serve now costs one check, not
// one per waiting job: every submission wakes the dispatcher, and a deep
// queue walked each time made submissions slower the deeper it grew. The
// queues it walks it compacts (compactQueueLocked).
func (s *Service) planInputLocked() ([]sched.Request, []*sched.Miner) {
	if s.queue.len() == 0 {
		return nil, nil
	}
	snap := s.snapshotLocked()
	free := map[string]bool{} // model → some miner serving it has a slot
	for _, m := range snap {
		if m.Running < m.Slots {
			for _, name := range m.Models {
				free[name] = true
			}
		}
	}
	var reqs []sched.Request
	for model := range s.queue.byModel {
		if !free[model] {
			continue
		}
		for _, id := range s.compactQueueLocked(model) {
			j := s.live[id].job
			prov, known := s.boundProviderLocked(j)
			if !known {
				// Until the coordinator has read the provider of the job's
				// service (refreshTrust), no miner is known to be allowed.
				j.Error = "waiting to read the provider of service " + j.ServiceID + " from the chain"
				continue
			}
			reqs = append(reqs, sched.Request{ID: id, Job: sched.Job{Model: j.Model, MaxTokens: uint64(j.MaxTokens), MaxPrice: j.MaxPrice,
				Exclude: excludedMiners(j), Tenant: j.TenantID, Provider: prov, ProviderMiners: s.servingLocked(prov), Needs: needsOf(j.Model, j.Prompt, j.Needs),
				Vision: jobHasImages(j)}})
		}
	}
	return reqs, snap
}

// compactQueueLocked drops from model's queue the ids of jobs no longer
// queued or offered to other coordinators (shared.go), and repeated ids (a job requeued to the front before its old
// place was compacted), and returns what is left, oldest first.
func (s *Service) compactQueueLocked(model string) []string {
	ids := s.queue.byModel[model]
	seen := make(map[string]bool, len(ids))
	rest := ids[:0]
	for _, id := range ids {
		if lj := s.live[id]; lj != nil && lj.job.Status == store.StatusQueued && !lj.offered && !seen[id] {
			seen[id] = true
			rest = append(rest, id)
		}
	}
	s.queue.set(model, rest)
	return rest
}

// applyPlanLocked commits a plan: each placement whose job is still queued
// and whose miner is still connected with a free slot is dispatched; jobs
// no miner can ever take fail; the others note why they wait.
func (s *Service) applyPlanLocked(p sched.Plan) {
	for _, pl := range p.Placements {
		lj, mc := s.live[pl.JobID], s.miners[pl.Miner]
		if lj == nil || mc == nil || lj.job.Status != store.StatusQueued || s.busyForLocked(mc, lj.job.TenantID) >= mc.slots {
			continue // changed since the snapshot: the next pass decides again
		}
		s.dispatchLocked(lj, mc)
	}
	for id, np := range p.Unplaced {
		lj := s.live[id]
		if lj == nil || lj.job.Status != store.StatusQueued {
			continue
		}
		if np.Reason == sched.TooPricey {
			s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Fail, Why: np.Error()})
			continue
		}
		lj.job.Error = np.Error() // why it waits, shown in status
	}
}

// busyForLocked is how many of mc's slots a job of tenant cannot use.
func (s *Service) busyForLocked(mc *minerConn, tenant string) int {
	return len(mc.running) + s.reservedByOthersLocked(mc.addr, tenant)
}

// waitReasonLocked says why a queued job waits, from the miners connected now.
func (s *Service) waitReasonLocked(j *store.Job) string {
	prov, known := s.boundProviderLocked(j)
	if !known {
		return "waiting to read the provider of service " + j.ServiceID + " from the chain"
	}
	_, np := s.checker.Place(sched.Job{Model: j.Model, MaxTokens: uint64(j.MaxTokens), MaxPrice: j.MaxPrice, Exclude: excludedMiners(j), Tenant: j.TenantID,
		Provider: prov, ProviderMiners: s.servingLocked(prov), Needs: needsOf(j.Model, j.Prompt, j.Needs), Vision: jobHasImages(j)}, s.snapshotLocked())
	if np == nil {
		return "next in line for a miner"
	}
	return np.Error()
}

// excludedMiners are the miners that already failed j.
func excludedMiners(j *store.Job) map[address.Address]bool {
	if len(j.Excluded) == 0 {
		return nil
	}
	excl := map[address.Address]bool{}
	for _, e := range j.Excluded {
		if a, err := address.Parse(e); err == nil {
			excl[a] = true
		}
	}
	return excl
}

// dispatchLocked sends lj to mc, starts its ack timer and queues its
// assignment on chain. The message goes into the session's buffer without
// waiting; a full buffer leaves the job queued for the next pass.
func (s *Service) dispatchLocked(lj *liveJob, mc *minerConn) bool {
	j := lj.job
	reg := s.registry[mc.addr]
	ev := lifecycle.Event{Kind: lifecycle.Dispatch, Miner: mc.addr, PricePer1k: reg.PricePer1k, Now: s.cfg.Now()}
	if _, _, err := lifecycle.Step(*j, ev, s.limits); err != nil {
		return false // past its cutoff: expireDue ends it
	}
	attempt := j.Attempt + 1
	msg := minerproto.Envelope{Type: minerproto.TypeJob, Job: &minerproto.Job{
		ID: j.ID, Attempt: attempt, Model: j.Model, Prompt: j.Prompt, PromptHash: j.PromptHash,
		MaxTokens: j.MaxTokens, Temperature: j.Temperature, TopP: j.TopP, Seed: j.Seed, Stop: j.Stop,
		Customer: j.Customer.String(), PricePer1k: reg.PricePer1k.String(), ChainID: s.chainID, Private: j.Private,
	}}
	for _, m := range j.Messages {
		msg.Job.Messages = append(msg.Job.Messages, minerproto.ChatMessage(m))
	}
	select {
	case mc.send <- msg:
	default:
		return false
	}
	s.applyLocked(lj, ev)
	lj.dispatched = ev.Now
	mc.running[j.ID] = attempt
	s.metrics.dispatched(j, ev.Now)
	id, miner := j.ID, mc.addr
	lj.ackTimer = time.AfterFunc(s.cfg.AckTimeout, func() { s.ackTimeout(id, miner, attempt) })
	// The chain learns of the placement without holding the job up: the
	// coordinator's nonces keep create → assign → settle in order. Output
	// flows meanwhile only inside the payment window the submission read;
	// a job dispatched after it closed waits for the create to be seen.
	if j.Payment == "deposit" && !j.OnChain && lj.createSent.IsZero() {
		s.sendCreateLocked(lj, false)
	}
	s.sendAssignLocked(lj)
	return true
}

// snapshotLocked is the scheduler's view of the connected miners, with
// the slots allocations hold, the chain's reputation of each and the
// stake delegated to it (on top of its own registration stake).
func (s *Service) snapshotLocked() []*sched.Miner {
	now := s.cfg.Now()
	out := make([]*sched.Miner, 0, len(s.miners))
	for _, mc := range s.miners {
		m := mc.view(s.registry[mc.addr])
		m.Reputation, m.ReputationKnown = s.trust.rep[mc.addr]
		m.Stake += s.trust.bonded[mc.addr]
		for _, a := range s.allocs {
			if a.Miner == mc.addr.String() && now.Before(a.Expires) {
				if m.Held == nil {
					m.Held = map[string]int{}
				}
				m.Held[a.TenantID] += a.Slots
			}
		}
		out = append(out, m)
	}
	return out
}

func (s *Service) ackTimeout(id string, miner address.Address, attempt int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lj := s.live[id]
	if lj == nil || lj.job.Status != store.StatusDispatched || lj.job.Miner != miner || lj.job.Attempt != attempt {
		return
	}
	s.log.Warn("job not acknowledged", "job", id, "miner", miner.String())
	if mc := s.miners[miner]; mc != nil {
		mc.failures++
	}
	s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Requeue, Miner: miner, Attempt: attempt,
		Why: "miner did not acknowledge the job in time", Exclude: true, Stop: true})
}
