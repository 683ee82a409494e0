package coordinator

import (
	"errors"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// applyLocked is the one place where a live job changes status: it runs
// the lifecycle's Step and carries out the effects in memory, handing the
// I/O (the store snapshot, transactions, miner messages) to the writers
// and session channels without waiting. It reports whether e applied.
func (s *Service) applyLocked(lj *liveJob, e lifecycle.Event) bool {
	if e.Now.IsZero() {
		e.Now = s.cfg.Now()
	}
	next, fx, err := lifecycle.Step(*lj.job, e, s.limits)
	if err != nil {
		if !errors.Is(err, lifecycle.ErrStale) && !errors.Is(err, lifecycle.ErrFinal) {
			s.log.Error("job event", "job", lj.job.ID, "event", e.Kind.String(), "err", err)
		}
		return false
	}
	prev := lj.job
	j := &next
	if !fx.Changed && !fx.Release {
		return true
	}
	lj.job = j

	if prev.Status == store.StatusDispatched && j.Status != store.StatusDispatched && lj.ackTimer != nil {
		lj.ackTimer.Stop()
	}
	if !fx.FreeMiner.IsZero() {
		if mc := s.miners[fx.FreeMiner]; mc != nil {
			delete(mc.running, j.ID)
			// A slot is free: queued jobs need not wait for the next tick,
			// nor jobs offered to other coordinators (shared.go).
			s.poke()
			s.kickBalance()
		}
	}
	if !fx.StopMiner.IsZero() {
		s.tellMinerLocked(fx.StopMiner, minerproto.Envelope{Type: minerproto.TypeCancel, JobID: j.ID, Attempt: prev.Attempt, Reason: j.Error})
	}

	// The stream. Output is released only while the payment gate is open.
	released := lifecycle.Released(*j, e.Now)
	switch {
	case fx.Restart:
		lj.hub.restart(Event{Type: EventStatus, Status: StatusRequeued, Attempt: j.Attempt + 1, Error: j.Error})
	case fx.Discard:
		lj.hub.discard()
	}
	if fx.Release && released {
		lj.hub.release()
		if e.Kind == lifecycle.Window && j.Status == store.StatusCompleted {
			// Wake readers waiting for a result the gate held.
			lj.hub.status(Event{Type: EventStatus, Status: j.Status, Attempt: j.Attempt})
		}
	}
	if e.Kind == lifecycle.Complete && lj.hub.tokens() == 0 && j.Result != "" {
		lj.hub.token(j.Result, released) // the miner streamed nothing: the result is the stream
	}
	if fx.StatusChanged && !fx.Restart && !fx.Final {
		lj.hub.status(Event{Type: EventStatus, Status: j.Status, Miner: addrOrZero(j.Miner), Attempt: j.Attempt})
	}
	if fx.Queue {
		s.queue.pushFront(j.Model, j.ID)
		s.poke()
	}
	if fx.CancelOnChain && (j.Payment != "deposit" || j.OnChain || !lj.createSent.IsZero()) {
		s.sendCancelLocked(j) // (a deposit job never created has nothing on chain to cancel)
	}
	if fx.Final {
		if j.Payment == "deposit" && !j.OnChain && lj.createSent.IsZero() {
			s.dropReservationLocked(j) // never created: it can never take the deposit
		} else {
			s.unreserveLocked(j)
		}
		lj.hub.done(Event{Type: EventDone, Status: j.Status, Error: j.Error, Code: j.ErrorCode})
		delete(s.live, j.ID)
		s.recent.add(cloneJob(j))
		s.metrics.jobFinished(j, e.Now)
		s.log.Info("job finished", "job", j.ID, "status", j.Status, "code", j.ErrorCode, "why", j.Error)
	}

	if fx.Changed {
		var after func()
		if fx.Settle {
			id := j.ID
			after = func() { s.resultStored(id) } // settle only what is durably stored
		}
		s.writer.Put(cloneJob(j), after)
	}
	return true
}

// resultStored runs once a completed job's snapshot is durable: its
// settlement may go out.
func (s *Service) resultStored(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lj := s.live[id]
	if lj == nil || lj.job.Status != store.StatusCompleted || lj.resultStored {
		return
	}
	lj.resultStored = true
	s.sendSettleLocked(lj)
}

// tellMinerLocked sends a message to a connected miner without waiting: a
// session whose buffer is full misses it (a cancel is advice; the job's
// late result is ignored anyway).
func (s *Service) tellMinerLocked(a address.Address, e minerproto.Envelope) {
	mc := s.miners[a]
	if mc == nil {
		return
	}
	select {
	case mc.send <- e:
	default:
		s.log.Warn("miner session full, message dropped", "miner", a.String(), "type", e.Type, "job", e.JobID)
	}
}

// persistLocked hands a snapshot of j to the store writer (for changes
// that are not status changes: transaction hashes, wait reasons).
func (s *Service) persistLocked(j *store.Job) {
	s.writer.Put(cloneJob(j), nil)
}

func cloneJob(j *store.Job) *store.Job {
	c := *j
	return &c
}
