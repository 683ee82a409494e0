package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Allocation reserves job slots ("GPUs") on one miner for a tenant's agent
// for a while: other tenants' jobs cannot use them, the tenant's own jobs
// can. Allocations live in the coordinator's memory; a restart releases
// them. On a shared store they are recorded too, so that a tenant's
// allocation count and deposit cover hold across coordinators (limits.go).
type Allocation struct {
	AgentID       string    `json:"agent_id"`
	TenantID      string    `json:"-"`
	Miner         string    `json:"miner"`
	GPU           string    `json:"gpu"` // the miner's device ("cpu" for CPU miners)
	Slots         int       `json:"slots"`
	MemoryMB      uint64    `json:"memory_mb"`
	MemoryChecked bool      `json:"memory_checked"` // false when the miner reports no GPU memory
	Created       time.Time `json:"created"`
	Expires       time.Time `json:"expires"`
	Lease         string    `json:"lease_id,omitempty"` // the chain lease it holds the slot for (rentals.go)
}

// AllocateRequest is POST /v1/resources.
type AllocateRequest struct {
	AgentID   string `json:"agent_id"`
	GPU       int    `json:"gpu"`       // slots to hold (default 1)
	MemoryMB  uint64 `json:"memory_mb"` // GPU memory the miner must have
	DurationS int64  `json:"duration"`  // seconds (default 3600)
	Model     string `json:"model,omitempty"`
}

// Utilization is GET /v1/resources/utilization.
type Utilization struct {
	Type       string  `json:"type"`
	Period     string  `json:"period"`
	Samples    int     `json:"samples"`
	Slots      float64 `json:"slots_avg"`
	Busy       float64 `json:"busy_avg"`     // slots running jobs
	Reserved   float64 `json:"reserved_avg"` // slots held by allocations
	AvgPercent float64 `json:"utilization_avg_pct"`
	PeakPct    float64 `json:"utilization_peak_pct"`
	Miners     int     `json:"miners_now"`
}

type usageSample struct {
	at                         time.Time
	gpuSlots, gpuBusy, gpuResv int
	allSlots, allBusy, allResv int
}

const maxSamples = 8640 // 24 h at one sample every 10 s

func isGPU(gpu string) bool { return gpu != "" && gpu != "cpu" }

// reservedByOthersLocked counts slots on miner held by allocations of
// tenants other than tenantID ("" counts all).
func (s *Service) reservedByOthersLocked(miner address.Address, tenantID string) int {
	n := 0
	now := s.cfg.Now()
	for _, a := range s.allocs {
		if a.Miner == miner.String() && a.TenantID != tenantID && now.Before(a.Expires) {
			n += a.Slots
		}
	}
	return n
}

// Allocate reserves slots for t's agent. Slots are not free: an
// allocation holds deposit cover of slots × duration at Limits.AllocPrice
// per slot-hour, which drops pro rata as it runs and is released when it
// ends; jobs cannot spend what allocations hold, nor allocations what jobs
// reserve. A tenant holds at most Limits.MaxAllocations at once.
func (s *Service) Allocate(ctx context.Context, t *store.Tenant, r AllocateRequest) (*Allocation, error) {
	r.AgentID = strings.TrimSpace(r.AgentID)
	if r.AgentID == "" || len(r.AgentID) > 64 {
		return nil, errf(ErrInvalidRequest, "agent_id must be 1-64 characters")
	}
	if r.GPU == 0 {
		r.GPU = 1
	}
	if r.DurationS == 0 {
		r.DurationS = 3600
	}
	if r.GPU < 1 || r.GPU > 64 || r.DurationS < 1 || r.DurationS > 7*24*3600 {
		return nil, errf(ErrInvalidRequest, "gpu must be 1-64 and duration 1 s to 7 days")
	}
	cost := s.cfg.Limits.allocCost(r.GPU, time.Duration(r.DurationS)*time.Second)
	var dep ChainDeposit
	if cost > 0 {
		var err error
		if dep, err = s.view.Deposit(ctx, t.Address, s.cfg.Address); err != nil {
			return nil, fmt.Errorf("coordinator: chain: %w", err)
		}
	}
	now := s.cfg.Now().UTC()
	if as, ok := s.cfg.Store.(allocStore); ok {
		return s.allocateShared(ctx, as, t, r, dep, cost, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allocateLocked(t, r, dep, cost, store.Load{}, now)
}

// allocateLocked checks and makes an allocation, counting what the
// tenant's jobs and allocations on other coordinators hold (elsewhere).
func (s *Service) allocateLocked(t *store.Tenant, r AllocateRequest, dep ChainDeposit, cost coin.Amount, elsewhere store.Load, now time.Time) (*Allocation, error) {
	s.pruneAllocsLocked()
	key := t.ID + "/" + r.AgentID
	if _, ok := s.allocs[key]; ok {
		return nil, errf(ErrAllocationExists, "agent %s already holds an allocation: deallocate it first", r.AgentID)
	}
	if lim := s.cfg.Limits.MaxAllocations; lim > 0 {
		n := len(elsewhere.Allocations)
		for _, a := range s.allocs {
			if a.TenantID == t.ID {
				n++
			}
		}
		if n >= lim {
			return nil, errf(ErrQuotaExceeded, "tenant %s holds %d allocations (limit %d): deallocate one first", t.ID, n, lim)
		}
	}
	if cost > 0 {
		held := s.allocHoldLocked(t.ID) + s.allocHoldOf(elsewhere.Allocations, now)
		reserved := s.reservedLocked(t.ID, dep.Height) + elsewhere.Reserved
		spendable, _ := dep.Amount.Sub(dep.Withdrawing)
		spendable, _ = spendable.Sub(reserved)
		spendable, _ = spendable.Sub(held)
		if spendable < cost {
			return nil, errf(ErrInsufficientDeposit, "%d slots for %d s need %s AITBC of deposit cover (%s per slot-hour); the deposit of %s with this coordinator is %s AITBC (%s announced for withdrawal), %s reserved by jobs and %s held by allocations (aitbc deposit add --wallet ... --amount ...)",
				r.GPU, r.DurationS, cost, s.cfg.Limits.AllocPrice, t.Address, dep.Amount, dep.Withdrawing, reserved, held)
		}
	}
	type cand struct {
		m        *sched.Miner
		free     int
		gpu      string
		memOK    bool
		memKnown bool
	}
	var best *cand
	reasons := map[string]int{}
	for _, m := range s.snapshotLocked() {
		reg := s.registry[m.Address]
		if r.Model != "" && !sched.Models([]*sched.Miner{m}).Contains(r.Model) {
			reasons["does not serve "+r.Model]++
			continue
		}
		free := m.Slots - m.BusyFor("") // every allocation holds its slots, whoever asks
		if free < r.GPU {
			reasons[fmt.Sprintf("fewer than %d free slots", r.GPU)]++
			continue
		}
		memKnown := reg.GPUMemoryMB > 0
		if r.MemoryMB > 0 && memKnown && reg.GPUMemoryMB < r.MemoryMB {
			reasons[fmt.Sprintf("less than %d MB of GPU memory", r.MemoryMB)]++
			continue
		}
		c := &cand{m: m, free: free, gpu: reg.GPU, memKnown: memKnown}
		// Prefer real GPUs, then the miner with the most free slots.
		if best == nil || isGPU(c.gpu) && !isGPU(best.gpu) || isGPU(c.gpu) == isGPU(best.gpu) && c.free > best.free {
			best = c
		}
	}
	if best == nil {
		if len(s.miners) == 0 {
			return nil, errf(ErrNoCapacity, "no miner is connected")
		}
		var why []string
		for k, n := range reasons {
			why = append(why, fmt.Sprintf("%d %s", n, k))
		}
		sort.Strings(why)
		return nil, errf(ErrNoCapacity, "no connected miner can hold %d slots: %s", r.GPU, strings.Join(why, "; "))
	}
	a := &Allocation{AgentID: r.AgentID, TenantID: t.ID, Miner: best.m.Address.String(), GPU: best.gpu, Slots: r.GPU, MemoryMB: r.MemoryMB,
		MemoryChecked: r.MemoryMB == 0 || best.memKnown, Created: now, Expires: now.Add(time.Duration(r.DurationS) * time.Second)}
	s.allocs[key] = a
	s.sampleUsageLocked()
	c := *a
	return &c, nil
}

// Allocations lists t's live allocations (one agent's when agentID is set).
func (s *Service) Allocations(t *store.Tenant, agentID string) []Allocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneAllocsLocked()
	out := []Allocation{}
	for _, a := range s.allocs {
		if a.TenantID == t.ID && (agentID == "" || a.AgentID == agentID) {
			out = append(out, *a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AgentID < out[j].AgentID })
	return out
}

// Deallocate releases t's agent's allocation (made on this coordinator).
func (s *Service) Deallocate(ctx context.Context, t *store.Tenant, agentID string) (*Allocation, error) {
	s.mu.Lock()
	key := t.ID + "/" + agentID
	a, ok := s.allocs[key]
	if !ok {
		s.mu.Unlock()
		return nil, errf(ErrAllocationNotFound, "agent %s holds no allocation", agentID)
	}
	delete(s.allocs, key)
	s.sampleUsageLocked()
	s.mu.Unlock()
	s.poke()
	if as, ok := s.cfg.Store.(allocStore); ok {
		if err := as.DropAllocation(ctx, t.ID, agentID); err != nil {
			// The record expires with the allocation; until then the
			// other coordinators count it, which errs on the safe side.
			s.log.Warn("forgetting an allocation in the shared store failed", "tenant", t.ID, "agent", agentID, "err", err)
		}
	}
	return a, nil
}

// allocHoldLocked is the deposit cover tenant's live allocations hold
// now: each its slots for the time it has left.
func (s *Service) allocHoldLocked(tenant string) coin.Amount {
	now := s.cfg.Now()
	var sum coin.Amount
	for _, a := range s.allocs {
		if a.TenantID == tenant && now.Before(a.Expires) && !leaseAllocFree(a) {
			sum, _ = sum.Add(s.cfg.Limits.allocCost(a.Slots, a.Expires.Sub(now)))
		}
	}
	return sum
}

func (s *Service) pruneAllocsLocked() {
	now := s.cfg.Now()
	for k, a := range s.allocs {
		if !now.Before(a.Expires) {
			delete(s.allocs, k)
		}
	}
}

// sampleUsage records slot use every 10 s for the utilization figures.
func (s *Service) sampleUsage() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sampleUsageLocked()
}

// sampleUsageLocked also runs when capacity changes (a miner joins or
// leaves, an allocation starts or ends), so the figures follow them.
func (s *Service) sampleUsageLocked() {
	s.pruneAllocsLocked()
	u := usageSample{at: s.cfg.Now()}
	for a, mc := range s.miners {
		resv := s.reservedByOthersLocked(a, "")
		busy := len(mc.running)
		u.allSlots, u.allBusy, u.allResv = u.allSlots+mc.slots, u.allBusy+busy, u.allResv+resv
		if isGPU(s.registry[a].GPU) {
			u.gpuSlots, u.gpuBusy, u.gpuResv = u.gpuSlots+mc.slots, u.gpuBusy+busy, u.gpuResv+resv
		}
	}
	s.samples = append(s.samples, u)
	if len(s.samples) > maxSamples {
		s.samples = s.samples[len(s.samples)-maxSamples:]
	}
}

// UtilizationOver summarises slot use over the last period, for miners
// with a GPU (typ "gpu") or all of them ("all", "cpu" counts all too).
func (s *Service) UtilizationOver(typ string, period time.Duration) Utilization {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Utilization{Type: typ, Period: period.String(), Miners: len(s.miners)}
	from := s.cfg.Now().Add(-period)
	var pctSum float64
	for _, u := range s.samples {
		if u.at.Before(from) {
			continue
		}
		slots, busy, resv := u.allSlots, u.allBusy, u.allResv
		if typ == "gpu" {
			slots, busy, resv = u.gpuSlots, u.gpuBusy, u.gpuResv
		}
		out.Samples++
		out.Slots += float64(slots)
		out.Busy += float64(busy)
		out.Reserved += float64(resv)
		if slots > 0 {
			p := 100 * float64(min(busy+resv, slots)) / float64(slots)
			pctSum += p
			out.PeakPct = max(out.PeakPct, p)
		}
	}
	if out.Samples > 0 {
		n := float64(out.Samples)
		out.Slots, out.Busy, out.Reserved, out.AvgPercent = out.Slots/n, out.Busy/n, out.Reserved/n, pctSum/n
	}
	return out
}

func (s *Service) usageLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	s.sampleUsage()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sampleUsage()
			s.checkLeases(ctx)
		}
	}
}

func (s *Service) hAllocate(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	var req AllocateRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		s.failDecode(w, err)
		return
	}
	a, err := s.Allocate(r.Context(), t, req)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, a)
}

func (s *Service) hAllocations(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"allocations": s.Allocations(t, r.URL.Query().Get("agent_id"))})
}

func (s *Service) hDeallocate(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	a, err := s.Deallocate(r.Context(), t, r.PathValue("agent"))
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, a)
}

func (s *Service) hUtilization(w http.ResponseWriter, r *http.Request) {
	typ := r.URL.Query().Get("type")
	if typ == "" {
		typ = "all"
	}
	if typ != "gpu" && typ != "cpu" && typ != "all" {
		s.fail(w, errf(ErrInvalidRequest, "type must be gpu, cpu or all"))
		return
	}
	period := time.Hour
	if p := r.URL.Query().Get("period"); p != "" {
		d, err := time.ParseDuration(p)
		if err != nil || d <= 0 || d > 24*time.Hour {
			s.fail(w, errf(ErrInvalidRequest, "period must be a duration up to 24h, e.g. 1h"))
			return
		}
		period = d
	}
	httpx.WriteJSON(w, http.StatusOK, s.UtilizationOver(typ, period))
}
