package coordinator

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Tenant limits that hold across the coordinators of a shared store: a
// tenant's active jobs, their prompt bytes and its deposit's reservations
// are counted over every coordinator when a job is stored (the store
// serialises one tenant's submissions), and its write rate is one token
// bucket in the database. On a store of its own a coordinator counts what
// it holds in memory, as before.

// newJobPutter is a shared store that checks what a tenant's jobs on the
// other coordinators hold and stores a new job atomically
// (store.Postgres.PutNewJob).
type newJobPutter interface {
	PutNewJob(ctx context.Context, j *store.Job, check func(store.Load) error) error
}

// tokenBuckets is a shared store's rate limiter (store.Postgres.TakeToken).
type tokenBuckets interface {
	TakeToken(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error)
}

// allocStore is a shared store that records allocations, checking what a
// tenant holds on the other coordinators (store.Postgres.PutAllocation).
type allocStore interface {
	PutAllocation(ctx context.Context, a store.Allocation, now time.Time, check func(store.Load) error) error
	DropAllocation(ctx context.Context, tenant, agent string) error
}

// allocateShared makes an allocation here and records it in the shared
// store in one step: the tenant's allocations on every coordinator count
// against its limit and deposit cover.
func (s *Service) allocateShared(ctx context.Context, as allocStore, t *store.Tenant, r AllocateRequest, dep ChainDeposit, cost coin.Amount, now time.Time) (*Allocation, error) {
	var made *Allocation
	rec := store.Allocation{Tenant: t.ID, Agent: r.AgentID, Slots: r.GPU, Expires: now.Add(time.Duration(r.DurationS) * time.Second)}
	err := as.PutAllocation(ctx, rec, now, func(elsewhere store.Load) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		a, err := s.allocateLocked(t, r, dep, cost, elsewhere, now)
		made = a
		return err
	})
	if errors.Is(err, store.ErrExists) {
		return nil, errf(ErrAllocationExists, "agent %s already holds an allocation (on this coordinator or another): deallocate it first", r.AgentID)
	}
	if err != nil {
		if made != nil { // made here, not recorded: undone
			s.mu.Lock()
			if cur := s.allocs[t.ID+"/"+r.AgentID]; cur != nil && cur.Created.Equal(made.Created) {
				delete(s.allocs, t.ID+"/"+r.AgentID)
			}
			s.mu.Unlock()
		}
		return nil, err
	}
	return made, nil
}

// allocHoldOf is the deposit cover allocations hold at now.
func (s *Service) allocHoldOf(as []store.Allocation, now time.Time) coin.Amount {
	var sum coin.Amount
	for _, a := range as {
		if now.Before(a.Expires) {
			sum, _ = sum.Add(s.cfg.Limits.allocCost(a.Slots, a.Expires.Sub(now)))
		}
	}
	return sum
}

// storeNewJob checks job j of tenant t against the tenant's limits and
// deposit (dep, for a deposit job), reserves what it needs, marks it as
// being submitted, and stores it. admitted is false when it was refused
// (err says why) with nothing reserved; with admitted true and an error
// the store failed, and the caller undoes the reservation.
func (s *Service) storeNewJob(ctx context.Context, t *store.Tenant, j *store.Job, dep ChainDeposit) (admitted bool, err error) {
	admit := func(elsewhere store.Load) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.admitLocked(t, j, dep, elsewhere); err != nil {
			return err
		}
		admitted = true
		return nil
	}
	if p, ok := s.cfg.Store.(newJobPutter); ok {
		err := p.PutNewJob(ctx, j, admit)
		if errors.Is(err, store.ErrExists) { // a wallet job handed to another coordinator too
			return admitted, errf(ErrJobExists, "job %s was already submitted", j.ID)
		}
		return admitted, err
	}
	if err := admit(store.Load{}); err != nil {
		return false, err
	}
	return true, s.cfg.Store.PutJob(ctx, j)
}

// admitLocked checks j against t's limits, counting what its jobs on other
// coordinators hold (elsewhere), reserves its max price of the deposit and
// marks it as being submitted.
func (s *Service) admitLocked(t *store.Tenant, j *store.Job, dep ChainDeposit, elsewhere store.Load) error {
	if _, dup := s.live[j.ID]; dup || s.submitting[j.ID] != "" {
		return errf(ErrJobExists, "job %s was already submitted", j.ID)
	}
	n, size := s.activeJobsLocked(t.ID)
	n += elsewhere.Jobs
	size += int(elsewhere.PromptBytes)
	if lim := s.cfg.Limits.MaxActiveJobs; lim > 0 && n >= lim {
		return errf(ErrQuotaExceeded, "tenant %s has %d jobs queued or running (limit %d): wait for some to finish", t.ID, n, lim)
	}
	if lim := s.cfg.Limits.MaxActiveBytes; lim > 0 && size+promptBytes(j) > lim {
		return errf(ErrQuotaExceeded, "tenant %s's active jobs hold %d prompt bytes; this one would pass the limit of %d: wait for some to finish", t.ID, size, lim)
	}
	if j.Payment == "deposit" {
		// Check and reserve under one lock (and on a shared store under
		// the tenant's lock in the database), so that concurrent
		// submissions cannot together overdraw the deposit. What is
		// announced for withdrawal is not spendable: it may leave before
		// the job is paid.
		reserved := s.reservedLocked(t.ID, dep.Height) + elsewhere.Reserved
		spendable, _ := dep.Amount.Sub(dep.Withdrawing)
		spendable, _ = spendable.Sub(reserved)
		spendable, _ = spendable.Sub(s.allocHoldLocked(t.ID) + s.allocHoldOf(elsewhere.Allocations, j.Created)) // what allocations hold
		if spendable < j.MaxPrice {
			return errf(ErrInsufficientDeposit, "deposit of %s with this coordinator is %s AITBC (%s announced for withdrawal), %s reserved by running jobs, the job needs %s (aitbc deposit add --wallet ... --amount ...)",
				t.Address, dep.Amount, dep.Withdrawing, reserved, j.MaxPrice)
		}
		s.reserveLocked(j)
	}
	s.submitting[j.ID] = t.ID
	return nil
}

// allowWrite answers 429 rate_limited (with Retry-After) and returns false
// when tenant is over its write rate: on a shared store the bucket is in
// the database, shared by every coordinator (when the database cannot be
// asked, this coordinator's own bucket decides).
func (s *Service) allowWrite(ctx context.Context, w http.ResponseWriter, tenant string) bool {
	what := "too many write requests for tenant " + tenant
	if tb, ok := s.cfg.Store.(tokenBuckets); ok && s.cfg.Limits.WriteRate > 0 {
		ok, wait, err := tb.TakeToken(ctx, "write/"+tenant, s.cfg.Limits.WriteRate, s.cfg.Limits.WriteBurst)
		switch {
		case err != nil:
			s.log.Warn("shared rate limit unavailable; this coordinator's own applies", "err", err)
		case !ok:
			httpx.WriteRateLimited(w, wait, what)
			return false
		default:
			return true
		}
	}
	return allow(w, s.guard.writes, tenant, what)
}
