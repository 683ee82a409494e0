package coordinator

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/rentals"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// leaseChain is the fake chain with the rentals module's leases.
type leaseChain struct {
	*fakeChain
	mu     sync.Mutex
	leases map[string]rentals.View
}

func (c *leaseChain) Lease(_ context.Context, id string) (rentals.View, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.leases[id]
	if !ok {
		return l, errf(ErrLeaseNotFound, "no lease %s on chain", id)
	}
	return l, nil
}

func (c *leaseChain) set(l rentals.View) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leases[l.ID] = l
}

// TestALeaseHoldsItsMinersSlotUntilTheChainClosesIt: the renter turns its
// lease into an allocation on the leased miner (no deposit needed: the
// lease is paid on chain); nobody else can, nor for a closed lease; when
// the chain says the lease ended the slot is released.
func TestALeaseHoldsItsMinersSlotUntilTheChainClosesIt(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	_, coord := newKey(t)
	lc := &leaseChain{fakeChain: newFakeChain(clock, coord, 0), leases: map[string]rentals.View{}}
	st, err := store.OpenSQLite(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := startHarness(t, lc.fakeChain, st, func(c *Config) { c.View = lc })
	m := h.addMiner(1000)
	_, stranger := newKey(t)
	other, _, err := h.s.AddTenant(h.ctx, "other", stranger)
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	lc.set(rentals.View{ID: "rent-1", Customer: h.tenant.Address, Provider: m.addr, GPU: "cpu", Status: "active", End: now.Add(time.Hour)})
	lc.set(rentals.View{ID: "rent-2", Customer: h.tenant.Address, Provider: m.addr, GPU: "cpu", Status: "expired", End: now.Add(-time.Minute)})

	for _, c := range []struct {
		tenant *store.Tenant
		id     string
		want   error
	}{
		{other, "rent-1", ErrNotLeaseHolder},
		{h.tenant, "rent-2", ErrLeaseClosed},
		{h.tenant, "rent-9", ErrLeaseNotFound},
		{h.tenant, "", ErrInvalidRequest},
	} {
		if _, err := h.s.AllocateLease(h.ctx, c.tenant, c.id, LeaseAllocationRequest{}); !errors.Is(err, c.want) {
			t.Errorf("%s for %s: %v, want %v", c.id, c.tenant.Name, err, c.want)
		}
	}
	a, err := h.s.AllocateLease(h.ctx, h.tenant, "rent-1", LeaseAllocationRequest{AgentID: "gpu-worker-1"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Miner != m.addr.String() || a.Slots != 1 || a.Lease != "rent-1" || !a.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("allocation %+v", a)
	}
	if _, err := h.s.AllocateLease(h.ctx, h.tenant, "rent-1", LeaseAllocationRequest{AgentID: "gpu-worker-1"}); !errors.Is(err, ErrAllocationExists) {
		t.Fatalf("twice: %v", err)
	}
	// One lease is one slot, whatever the agent is called.
	if _, err := h.s.AllocateLease(h.ctx, h.tenant, "rent-1", LeaseAllocationRequest{AgentID: "gpu-worker-2"}); !errors.Is(err, ErrAllocationExists) {
		t.Fatalf("the same lease for another agent: %v", err)
	}
	held := func() (forRenter, hold int) {
		h.s.mu.Lock()
		defer h.s.mu.Unlock()
		for _, sm := range h.s.snapshotLocked() {
			if sm.Address == m.addr {
				return sm.Held[h.tenant.ID], int(h.s.allocHoldLocked(h.tenant.ID))
			}
		}
		return 0, 0
	}
	if n, hold := held(); n != 1 || hold != 0 {
		t.Fatalf("miner holds %d slots for the renter, deposit cover %d", n, hold)
	}
	// Still active: a check keeps it.
	h.s.checkLeases(h.ctx)
	if n, _ := held(); n != 1 {
		t.Fatal("an active lease's slot was released")
	}
	// The provider ends it on chain: the next check releases the slot.
	lc.set(rentals.View{ID: "rent-1", Customer: h.tenant.Address, Provider: m.addr, Status: "ended", End: now.Add(time.Hour)})
	h.s.checkLeases(h.ctx)
	if n, _ := held(); n != 0 {
		t.Fatalf("the ended lease still holds %d slots", n)
	}
	if got := h.s.Allocations(h.tenant, ""); len(got) != 0 {
		t.Fatalf("allocations left: %+v", got)
	}
}
