package coordinator

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/rentals"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
)

// GPU rental: a lease on chain (internal/chain/modules/rentals) pays a
// provider by the hour for a place on its gpu-rental listing. The renter
// turns it into an allocation here: the leased miner's slot is held for the
// renter's tenant until the lease's paid-up end (other tenants' jobs cannot
// use it, the renter's run there first: sched prefers a miner holding
// slots for the job's tenant). The allocation costs no deposit cover (the
// lease is paid on chain) and is dropped as soon as the chain says the
// lease closed, whoever closed it.

// Errors of the rental routes.
var (
	ErrLeaseNotFound  = errors.New("coordinator: lease not found")
	ErrNotLeaseHolder = errors.New("coordinator: not the lease's customer")
	ErrLeaseClosed    = errors.New("coordinator: lease not active")
)

// LeaseView is what the coordinator reads of the chain's leases. The
// node adapter (FromRPC) implements it; a ChainView without it cannot
// serve rentals.
type LeaseView interface {
	Lease(ctx context.Context, id string) (rentals.View, error)
}

// Lease implements LeaseView through the rentals module's typed query.
func (v rpcView) Lease(ctx context.Context, id string) (rentals.View, error) {
	l, err := rentals.Query(ctx, v.c, id)
	if httpx.IsCode(err, rentals.ErrNotFound.Name) {
		return l, errf(ErrLeaseNotFound, "no lease %s on chain", id)
	}
	return l, err
}

// LeaseAllocationRequest is POST /v1/rentals/{id}/allocation.
type LeaseAllocationRequest struct {
	// AgentID names the allocation (the lease's id when empty).
	AgentID string `json:"agent_id,omitempty"`
}

// AllocateLease holds the leased miner's slot for t until the lease's
// paid-up end. t must be the lease's customer, and the lease active.
func (s *Service) AllocateLease(ctx context.Context, t *store.Tenant, leaseID string, r LeaseAllocationRequest) (*Allocation, error) {
	if leaseID == "" || len(leaseID) > 64 {
		return nil, errf(ErrInvalidRequest, "lease id must be 1-64 characters")
	}
	agent := strings.TrimSpace(r.AgentID)
	if agent == "" {
		agent = leaseID
	}
	if len(agent) > 64 {
		return nil, errf(ErrInvalidRequest, "agent_id must be 1-64 characters")
	}
	lv, ok := s.view.(LeaseView)
	if !ok {
		return nil, errf(ErrLeaseNotFound, "this coordinator reads no leases from its chain")
	}
	l, err := lv.Lease(ctx, leaseID)
	if err != nil {
		return nil, err
	}
	if l.Customer != t.Address {
		return nil, errf(ErrNotLeaseHolder, "lease %s is %s's, not %s's", l.ID, l.Customer, t.Address)
	}
	now := s.cfg.Now()
	if l.Status != rentals.StatusName(rentals.StatusActive) || !now.Before(l.End) {
		return nil, errf(ErrLeaseClosed, "lease %s is %s (paid until %s)", l.ID, l.Status, l.End.Format(time.RFC3339))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneAllocsLocked()
	key := t.ID + "/" + agent
	if _, ok := s.allocs[key]; ok {
		return nil, errf(ErrAllocationExists, "agent %s already holds an allocation: deallocate it first", agent)
	}
	n := 0
	for _, a := range s.allocs {
		if a.Lease == l.ID { // one lease is one place: one slot, once
			return nil, errf(ErrAllocationExists, "lease %s already holds a slot for agent %s", l.ID, a.AgentID)
		}
		if a.TenantID == t.ID {
			n++
		}
	}
	if lim := s.cfg.Limits.MaxAllocations; lim > 0 && n >= lim {
		return nil, errf(ErrQuotaExceeded, "tenant %s holds %d allocations (limit %d): deallocate one first", t.ID, n, lim)
	}
	reg := s.registry[l.Provider]
	a := &Allocation{AgentID: agent, TenantID: t.ID, Miner: l.Provider.String(), GPU: l.GPU, Slots: 1, MemoryMB: l.GPUMemoryMB,
		MemoryChecked: reg.GPUMemoryMB > 0, Created: now.UTC(), Expires: l.End, Lease: l.ID}
	s.allocs[key] = a
	s.sampleUsageLocked()
	c := *a
	return &c, nil
}

// leaseAllocsFree reports whether an allocation holds no deposit cover:
// a lease's is paid on chain.
func leaseAllocFree(a *Allocation) bool { return a.Lease != "" }

// checkLeases drops the allocations whose lease the chain says has closed
// (ended early by either party, or its listing closed). The chain is read
// outside the lock.
func (s *Service) checkLeases(ctx context.Context) {
	lv, ok := s.view.(LeaseView)
	if !ok {
		return
	}
	s.mu.Lock()
	leases := map[string]bool{}
	for _, a := range s.allocs {
		if a.Lease != "" {
			leases[a.Lease] = true
		}
	}
	s.mu.Unlock()
	closed := map[string]bool{}
	for id := range leases {
		l, err := lv.Lease(ctx, id)
		switch {
		case errors.Is(err, ErrLeaseNotFound):
			closed[id] = true
		case err != nil:
			s.log.Warn("reading a lease", "lease", id, "err", err)
		case l.Status != rentals.StatusName(rentals.StatusActive):
			closed[id] = true
		}
	}
	if len(closed) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, a := range s.allocs {
		if closed[a.Lease] {
			delete(s.allocs, k)
		}
	}
	s.sampleUsageLocked()
}

func (s *Service) hAllocateLease(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	var req LeaseAllocationRequest
	if r.ContentLength != 0 {
		if err := httpx.DecodeJSON(r, &req); err != nil {
			s.failDecode(w, err)
			return
		}
	}
	a, err := s.AllocateLease(r.Context(), t, r.PathValue("id"), req)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, a)
}

// AllocateLease asks the coordinator to hold lease id's miner slot for
// the client's tenant (the lease's customer).
func (c *Client) AllocateLease(ctx context.Context, id, agentID string) (Allocation, error) {
	var a Allocation
	return a, c.do(ctx, http.MethodPost, "/v1/rentals/"+url.PathEscape(id)+"/allocation", LeaseAllocationRequest{AgentID: agentID}, &a)
}
