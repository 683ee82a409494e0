package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// Several coordinators on one shared store (store.Shared, PostgreSQL):
// each drives the active jobs it holds the lease of, renews those leases
// while it lives, and takes over the jobs whose lease expired because
// their coordinator died. A customer following a job another coordinator
// drives gets its status changes and result from the store, woken by the
// store's notifications (followRemote).

// sharedEvery is how often leases are renewed and expired ones looked for,
// as a fraction of the lease: three renewals fit in one lease, so one slow
// round trip does not lose a job.
const sharedEveryDiv = 3

// adoptBatch caps the jobs one pass takes over, so that a coordinator
// coming up beside a dead one's thousands of jobs spreads them over
// passes (and over the other coordinators that look too).
const adoptBatch = 256

// sharedLoop renews leases and takes over expired ones until ctx ends. It
// returns at once when the store is not shared.
func (s *Service) sharedLoop(ctx context.Context) {
	sh, ok := s.cfg.Store.(store.Shared)
	if !ok {
		return
	}
	go func() {
		_ = sh.Listen(ctx, s.remoteChanged)
	}()
	every := s.cfg.Lease / sharedEveryDiv
	if every <= 0 {
		every = store.DefaultLease / sharedEveryDiv
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.renewLeases(ctx, sh)
		s.adoptExpired(ctx, sh)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// renewLeases extends the leases of every live job and lets go of those
// another coordinator took over while this one was cut off.
func (s *Service) renewLeases(ctx context.Context, sh store.Shared) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	lost, err := sh.RenewLeases(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("renewing job leases failed", "jobs", len(ids), "err", err)
		}
		return
	}
	if len(lost) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range lost {
		if lj := s.live[id]; lj != nil {
			s.letGoLocked(lj)
		}
	}
}

// letGoLocked forgets a job another coordinator drives now: its miner here
// is told to stop (the new coordinator dispatches it again), followers here
// are moved to the store's view of it, and nothing of it is written or
// sent from here any more (the store refuses the writes anyway).
func (s *Service) letGoLocked(lj *liveJob) {
	j := lj.job
	if lj.ackTimer != nil {
		lj.ackTimer.Stop()
	}
	if !j.Miner.IsZero() {
		if mc := s.miners[j.Miner]; mc != nil {
			if _, ok := mc.running[j.ID]; ok {
				delete(mc.running, j.ID)
				s.tellMinerLocked(j.Miner, minerproto.Envelope{Type: minerproto.TypeCancel, JobID: j.ID, Attempt: j.Attempt, Reason: "taken over by another coordinator"})
			}
		}
	}
	s.dropReservationLocked(j) // its new coordinator reserves it
	lj.hub.done(Event{Type: EventDone, Status: j.Status, Error: "the job moved to another coordinator: follow it again", Code: "job_moved"})
	delete(s.live, j.ID)
	s.log.Warn("job taken over by another coordinator", "job", j.ID, "status", j.Status)
	s.poke()
}

// adoptExpired takes over jobs whose coordinator stopped renewing.
func (s *Service) adoptExpired(ctx context.Context, sh store.Shared) {
	got, err := sh.ClaimExpired(ctx, adoptBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("taking over expired jobs failed", "err", err)
		}
		return
	}
	if len(got) == 0 {
		return
	}
	s.mu.Lock()
	for _, j := range got {
		s.adoptLocked(j)
	}
	s.mu.Unlock()
	s.log.Info("took over jobs from a coordinator that stopped", "jobs", len(got))
	s.poke()
}

// claimSettlement asks the shared store whether this coordinator may send
// job id's settlement (it holds the lease); a store that is not shared
// always lets it. Called off the lock, from the chain writer.
func (s *Service) claimSettlement(ctx context.Context, id string) bool {
	sh, ok := s.cfg.Store.(store.Shared)
	if !ok {
		return true
	}
	err := sh.ClaimSettlement(ctx, id)
	if err == nil {
		return true
	}
	if errors.Is(err, store.ErrLeaseLost) {
		s.log.Info("settlement left to the coordinator that drives the job", "job", id, "err", err)
	} else {
		s.log.Warn("settlement guard", "job", id, "err", err)
	}
	return false
}

// reservedElsewhere is what tenant's deposit jobs driven by other
// coordinators on a shared store hold of its deposit (0 on a store of its
// own). Read outside the lock, before a submission checks the deposit.
func (s *Service) reservedElsewhere(ctx context.Context, tenant string) (coin.Amount, error) {
	sh, ok := s.cfg.Store.(store.Shared)
	if !ok {
		return 0, nil
	}
	return sh.ReservedElsewhere(ctx, tenant)
}

// remoteChanged is the store's notification that a job changed on some
// coordinator: followers of it here look again.
func (s *Service) remoteChanged(id, _ string) {
	s.mu.Lock()
	ws := s.remote[id]
	delete(s.remote, id)
	s.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// remoteWait returns a channel closed at the next change of job id.
func (s *Service) remoteWait(id string) <-chan struct{} {
	ch := make(chan struct{})
	s.mu.Lock()
	if s.remote == nil {
		s.remote = map[string][]chan struct{}{}
	}
	s.remote[id] = append(s.remote[id], ch)
	s.mu.Unlock()
	return ch
}

// remotePoll bounds how long a follower of another coordinator's job waits
// without a notification (one lost while the listening connection was
// down) before it reads the store anyway.
const remotePoll = 2 * time.Second

// followRemote follows a job another coordinator drives: status changes as
// the store records them, then the result and done. Tokens are not relayed
// one by one across coordinators; the text arrives whole with the result.
// It returns nil when the store is not shared.
func (s *Service) followRemote(t *store.Tenant, j *store.Job) *Subscription {
	if _, ok := s.cfg.Store.(store.Shared); !ok {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Event, 16)
	go func() {
		defer close(out)
		last := j.Status
		for {
			wake := s.remoteWait(j.ID)
			cur, err := s.Job(ctx, t, j.ID)
			if err != nil {
				if ctx.Err() == nil {
					select {
					case out <- Event{Type: EventDone, Status: last, Error: err.Error(), Code: "job_unavailable"}:
					case <-ctx.Done():
					}
				}
				return
			}
			var evs []Event
			if cur.Status != last && cur.Active() {
				evs = append(evs, Event{Type: EventStatus, Status: cur.Status, Miner: addrOrZero(cur.Miner), Attempt: cur.Attempt})
			}
			if !cur.Active() || cur.Status == store.StatusCompleted && lifecycle.Released(*cur, s.cfg.Now()) && cur.Result != "" {
				if cur.Result != "" {
					evs = append(evs, Event{Type: EventToken, Text: cur.Result, Seq: 1, Attempt: cur.Attempt})
				}
			}
			if !cur.Active() {
				evs = append(evs, Event{Type: EventDone, Status: cur.Status, Error: cur.Error, Code: cur.ErrorCode})
			}
			last = cur.Status
			for _, e := range evs {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
			if !cur.Active() {
				return
			}
			if cur.Status == store.StatusCompleted && cur.Result != "" && lifecycle.Released(*cur, s.cfg.Now()) {
				// The text went out: wait only for done.
				for cur.Active() && ctx.Err() == nil {
					select {
					case <-wake:
					case <-time.After(remotePoll):
					case <-ctx.Done():
						return
					}
					wake = s.remoteWait(j.ID)
					if cur, err = s.Job(ctx, t, j.ID); err != nil {
						return
					}
				}
				select {
				case out <- Event{Type: EventDone, Status: cur.Status, Error: cur.Error, Code: cur.ErrorCode}:
				case <-ctx.Done():
				}
				return
			}
			select {
			case <-wake:
			case <-time.After(remotePoll):
			case <-ctx.Done():
				return
			}
		}
	}()
	return &Subscription{Job: j, Attempt: j.Attempt, Events: out, Cancel: cancel}
}
